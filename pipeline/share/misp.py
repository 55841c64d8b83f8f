"""One MISP event per export, built from PyMISP's bundled object templates, as the offline
JSON a MISP instance imports ({"Event": …}).

Objects: `microblog` per flagged post, `artifact` for its captured page (URL and SHA-256, the
evidence a referral cites), `telegram-account` / `user-account` per source and per handle
posts give, `instant-message-group` per Telegram channel, `phone-number` per phone (E.164),
`coin-address` per wallet, `organization` per payment office and per network, `ocrized-image`
per image read, `annotation` for the analyst's reason. References: microblog `authored-by`
account, `part-of` channel, `mentions` contacts, offices and wallets, `derived-from` its page
capture; ocrized-image `included-in` microblog; annotation `annotates` microblog; accounts
and phones `member-of` their network.

Every object and attribute has a UUIDv5 of what it stands for: a second export of the same
posts gives the same ids, and MISP updates instead of duplicating."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import phonenumbers
from pymisp import MISPEvent, MISPObject, MISPOrganisation

from pipeline.share.ids import stable_uuid
from pipeline.share.selection import network_summary

if TYPE_CHECKING:
    from pipeline.share.markings import Markings
    from pipeline.share.selection import Selection, SharedPost

THREAT_LEVEL_MEDIUM = 2
ANALYSIS_ONGOING = 1  # Vigie keeps crawling: a later export updates the event
APPS = {"telegram": "Telegram", "whatsapp": "WhatsApp", "signal": "Signal"}
# The microblog template's `type` suggestions, and what other platforms are there.
MICROBLOG_TYPES = {"facebook": "Facebook", "instagram": "Instagram", "x": "Twitter", "twitter": "Twitter"}


class TemplateError(ValueError):
    """An attribute the object's template does not define (a bug: templates are strict here)."""


class _Builder:
    def __init__(self, selection: Selection, markings: Markings, organisation: str) -> None:
        self.selection = selection
        self.markings = markings
        self.organisation = organisation
        self.objects: dict[str, MISPObject] = {}

    def obj(self, name: str, *identity: str) -> tuple[MISPObject, bool]:
        """The object of `name` for `identity`, and whether it is new."""
        uuid = stable_uuid("misp-object", name, *identity)
        if uuid in self.objects:
            return self.objects[uuid], False
        made = MISPObject(name, strict=True, standalone=False)
        made.uuid = uuid
        made.distribution = 5  # inherit the event's
        self.objects[uuid] = made
        return made, True

    @staticmethod
    def add(target: MISPObject, relation: str, value: Any, **extra: Any) -> None:
        if value is None or value == "" or value == []:
            return
        definition = target._definition or {}
        if relation not in definition.get("attributes", {}):
            raise TemplateError(f"{target.name} has no {relation!r} attribute")
        values = value if isinstance(value, list) else [value]
        for one in values:
            attribute = target.add_attribute(relation, value=one, **extra)
            if attribute is not None:
                attribute.uuid = stable_uuid("misp-attribute", target.uuid, relation, str(one))
                attribute.distribution = 5

    @staticmethod
    def refer(source: MISPObject, target: MISPObject, relationship: str) -> None:
        if any(
            r.referenced_uuid == target.uuid and r.relationship_type == relationship
            for r in source.ObjectReference
        ):
            return
        reference = source.add_reference(target.uuid, relationship)
        reference.uuid = stable_uuid("misp-reference", source.uuid, relationship, target.uuid)

    # -- the objects ---------------------------------------------------------------------

    def source_account(self, post: SharedPost) -> MISPObject:
        if post.platform == "telegram":
            account, new = self.obj("telegram-account", post.channel.lower())
            if new:
                self.add(account, "username", post.channel)
        else:
            account, new = self.obj("user-account", post.platform, post.channel.lower())
            if new:
                self.add(account, "username", post.channel)
                self.add(account, "account-type", post.platform)
                self.add(account, "display-name", post.author_name)
        return account

    def channel_group(self, post: SharedPost) -> MISPObject | None:
        if post.platform != "telegram":
            return None
        group, new = self.obj("instant-message-group", post.channel.lower())
        if new:
            self.add(group, "group-name", post.channel)
            self.add(group, "app-used", "Telegram")
            self.add(group, "url", f"https://t.me/{post.channel}")
            self.add(group, "username", post.channel)
        return group

    def handle(self, handle: str) -> MISPObject:
        account, new = self.obj("telegram-account", handle.lower())
        if new:
            self.add(account, "username", handle)
        return account

    def phone(self, number: str) -> MISPObject:
        phone, new = self.obj("phone-number", number)
        if new:
            self.add(phone, "phone-number", number)
            try:
                parsed = phonenumbers.parse(number)
            except phonenumbers.NumberParseException:
                return phone
            self.add(phone, "country-code", phonenumbers.region_code_for_number(parsed))
            self.add(phone, "country-code-numeric", f"+{parsed.country_code}")
        return phone

    def wallet(self, wallet: str) -> MISPObject:
        kind, _, address = wallet.partition(":")
        address = address or kind
        symbol = kind.split("-")[0].upper() if address != kind else ""
        coin, new = self.obj("coin-address", wallet)
        if new:
            if symbol == "BTC":
                self.add(coin, "address", address)
            elif symbol == "XMR":
                self.add(coin, "address-xmr", address)
            else:
                self.add(coin, "address-crypto", address)
            self.add(coin, "symbol", symbol)
            self.add(coin, "text", f"{kind} wallet named in smuggling adverts" if symbol else None)
        return coin

    def office(self, name: str) -> MISPObject:
        office, new = self.obj("organization", "payment-office", name)
        if new:
            self.add(office, "name", name)
            self.add(office, "role", "Suspect")
            self.add(office, "type-of-organization", "payment office (hawala or guarantee office)")
            self.add(office, "description", "Holds migrants' money until arrival, as adverts describe it.")
        return office

    def network(self, network_id: str) -> MISPObject:
        network, new = self.obj("organization", "network", network_id)
        if new:
            found = next(n for n in self.selection.networks if n.network_id == network_id)
            self.add(network, "name", f"Smuggling network {network_id}")
            self.add(network, "alias", network_id)
            self.add(network, "role", "Suspect")
            self.add(network, "type-of-organization", "smuggling network (sources linked by what they share)")
            self.add(network, "description", network_summary(found))
            self.add(network, "date-of-inception", found.first_seen)
        return network

    def post(self, post: SharedPost) -> None:
        blog, _ = self.obj("microblog", post.key)
        self.add(blog, "post", post.text)
        self.add(blog, "url", post.url)
        self.add(blog, "link", post.url)
        self.add(blog, "username", post.channel)
        self.add(blog, "display-name", post.author_name)
        self.add(blog, "creation-date", post.published_at)
        self.add(blog, "type", MICROBLOG_TYPES.get(post.platform, post.platform.capitalize()))
        self.add(blog, "language", post.lang)
        self.add(blog, "state", "Malicious")
        self.add(blog, "username-quoted", post.handles)
        self.add(blog, "embedded-link", [_with_scheme(link) for link in post.links])

        account = self.source_account(post)
        self.refer(blog, account, "authored-by")
        group = self.channel_group(post)
        if group is not None:
            self.refer(blog, group, "part-of")
            self.refer(account, group, "owned-by")
        mentioned = (
            [self.phone(p) for p in post.phones]
            + [self.handle(h) for h in post.handles]
            + [self.office(o) for o in post.payments]
            + [self.wallet(w) for w in post.wallets]
        )
        for target in mentioned:
            self.refer(blog, target, "mentions")
        for network_id in post.networks:
            network = self.network(network_id)
            for member in [account, *mentioned[: len(post.phones) + len(post.handles)]]:
                self.refer(member, network, "member-of")

        if post.page_sha256:
            capture, _ = self.obj("artifact", post.key)
            self.add(capture, "url", post.url)
            self.add(
                capture, "sha256", post.page_sha256, comment=f"the page as captured at {post.captured_at}"
            )
            self.add(capture, "mime_type", "text/html")
            self.refer(blog, capture, "derived-from")
        for image in post.images:
            if not image.ocr_text:
                continue
            read, _ = self.obj("ocrized-image", post.key, image.sha256)
            self.add(
                read,
                "image",
                f"{image.sha256}{_extension(image.content_type)}",
                comment=f"SHA-256 {image.sha256}",
            )
            self.add(read, "ocr-text", image.ocr_text)
            self.add(read, "source", "Vigie")
            self.add(read, "reference", post.url)
            self.refer(read, blog, "included-in")
        if post.review_reason:
            note, _ = self.obj("annotation", post.key, "review")
            self.add(note, "text", post.review_reason)
            self.add(note, "type", "Annotation")
            self.add(note, "format", "text")
            self.refer(note, blog, "annotates")

    def event(self) -> MISPEvent:
        selection = self.selection
        scope = selection.period or "all time"
        if selection.network_id:
            scope += f", network {selection.network_id}"
        event = MISPEvent(strict_validation=True)
        event.uuid = stable_uuid(
            "misp-event", self.organisation, selection.period or "", selection.network_id or ""
        )
        event.info = f"Migrant-smuggling adverts ({scope}), shared by {self.organisation}"
        event.distribution = self.markings.misp_distribution
        event.threat_level_id = THREAT_LEVEL_MEDIUM
        event.analysis = ANALYSIS_ONGOING
        event.published = False
        event.set_date(_latest_day(selection))
        org = MISPOrganisation()
        org.name = self.organisation
        org.uuid = stable_uuid("organisation", self.organisation)
        event.Orgc = org
        for tag in self.markings.misp_tags:
            event.add_tag(tag)
        for network in selection.networks:
            event.add_tag(f'vigie:network="{network.network_id}"')
        for post in selection.posts:
            self.post(post)
        for made in self.objects.values():
            event.add_object(made)
        return event


def _with_scheme(link: str) -> str:
    return link if link.startswith(("http://", "https://")) else f"https://{link}"


def _extension(content_type: str | None) -> str:
    return {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif"}.get(
        content_type or "", ""
    )


def _latest_day(selection: Selection) -> date:
    days = [p.published_at[:10] for p in selection.posts if p.published_at]
    if days:
        try:
            return date.fromisoformat(max(days))
        except ValueError:
            pass
    return datetime.now(UTC).date()


def build_event(selection: Selection, markings: Markings, organisation: str) -> MISPEvent:
    """The MISP event of a selection; raises `pymisp.InvalidMISPObject` if an object misses
    what its template requires."""
    return _Builder(selection, markings, organisation).event()


def event_json(event: MISPEvent) -> str:
    """The event as MISP imports it: {"Event": …}, keys sorted, objects validated."""
    for made in event.objects:
        made._validate()
    return json.dumps({"Event": json.loads(event.to_json())}, ensure_ascii=False, indent=1, sort_keys=True)
