"""One STIX 2.1 bundle per export (the `stix2` library).

- `identity` of the sharing organisation: `created_by_ref` of every object that has one;
- TLP 2.0 `marking-definition` (OASIS's published objects) and PAP as a statement marking,
  in `object_marking_refs` of every other object;
- `user-account` per source (account_type the platform, "telegram") and per handle posts give;
- `observed-data` per flagged post, referring to its SCOs: the source's account, the post's
  `url`, messenger links as `url`, handles as `user-account`, phones as `x-vigie-phone-number`
  and wallets as `x-vigie-crypto-wallet` (STIX has neither: custom SCOs, each declared by an
  `extension-definition` of type new-sco), its images as `file` (SHA-256), its text (when
  shared) as an `artifact` whose SHA-256 is the text's; the evidence hashes (the captured
  page's, the stored content's) sit in a property extension, `x_vigie_evidence`;
- `identity` (organization) per payment office, `relationship` related-to from the posts;
- `grouping` per network (context suspicious-activity) of its posts and accounts, with a
  `note` of its profile; a `note` of the analyst's reason per reviewed post, and of the text
  read in each image (when shared).

SCO ids are the library's deterministic UUIDv5s; every other id is a UUIDv5 of what it
stands for, so a second export gives the same ids (the validator warns that those are not
UUIDv4: deliberate)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import stix2
from stix2.properties import StringProperty
from stix2.v21 import CustomObservable

from pipeline.share.ids import stable_uuid
from pipeline.share.markings import TLP2_CREATED, TLP2_EXTENSION
from pipeline.share.selection import network_summary
from vigie.store import stored_time

if TYPE_CHECKING:
    from pipeline.share.markings import Markings
    from pipeline.share.selection import Selection, SharedPost

# Vigie's extension definitions: fixed ids, so partners recognise them from export to export.
PHONE_EXTENSION = "extension-definition--2f5c7a1e-8d43-4b6e-9a0f-6c1d3e8b5a72"
WALLET_EXTENSION = "extension-definition--9a4e2b7c-1f6d-4c83-b5e0-3d7f8a2c6e14"
EVIDENCE_EXTENSION = "extension-definition--c7d1e9a3-5b2f-4e68-8a4c-0f3b6d9e2a51"
EVIDENCE = "x_vigie_evidence"
# When Vigie's own definitions (identity, extensions, PAP) were first written.
DEFINED = "2026-01-01T00:00:00.000Z"


def _valued_observable(kind: str, extra: str, extension: str) -> Any:
    """A custom SCO with a required `value` (its id comes from it) and one more property."""
    return CustomObservable(
        kind,
        [("value", StringProperty(required=True)), (extra, StringProperty())],
        ["value"],
        extension_name=extension,
    )


@_valued_observable("x-vigie-phone-number", "country", PHONE_EXTENSION)
class PhoneNumber:
    """A phone number in E.164, with its ISO 3166 country."""


@_valued_observable("x-vigie-crypto-wallet", "currency", WALLET_EXTENSION)
class CryptoWallet:
    """A cryptocurrency address, with its currency and chain (e.g. "usdt-trc20")."""


def _sdo_id(kind: str, *parts: str) -> str:
    return f"{kind}--{stable_uuid('stix', kind, *parts)}"


def _time(value: str | None, fallback: str) -> str:
    """An ISO time as STIX writes it (UTC, Z); `fallback` when missing or unreadable."""
    for candidate in (value, fallback):
        moment = stored_time(candidate)
        if moment is not None:
            return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return DEFINED


class _Builder:
    def __init__(self, selection: Selection, markings: Markings, organisation: str) -> None:
        self.selection = selection
        self.markings = markings
        self.objects: dict[str, Any] = {}
        self.identity = stix2.Identity(
            id=_sdo_id("identity", "organisation", organisation),
            created=DEFINED,
            modified=DEFINED,
            name=organisation,
            identity_class="organization",
            description="Shares what Vigie finds of migrant-smuggling adverts on social media.",
        )
        tlp = stix2.MarkingDefinition(
            id=markings.stix_tlp_id,
            created=TLP2_CREATED,
            name=markings.tlp_name,
            extensions={TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": markings.tlp}},
        )
        pap = stix2.MarkingDefinition(
            id=_sdo_id("marking-definition", "pap", markings.pap),
            created=DEFINED,
            created_by_ref=self.identity.id,
            name=markings.pap_name,
            definition_type="statement",
            definition=stix2.StatementMarking(statement=markings.pap_statement),
        )
        self.marks = [tlp.id, pap.id]
        for made in (self.identity, tlp, pap, *self._extensions()):
            self.objects[made.id] = made

    def _extensions(self) -> list[Any]:
        common = {
            "created": DEFINED,
            "modified": DEFINED,
            "created_by_ref": self.identity.id,
            "version": "1.0",
        }
        return [
            stix2.ExtensionDefinition(
                id=PHONE_EXTENSION,
                name="x-vigie-phone-number",
                description="A phone number adverts give, as a cyber-observable.",
                schema="Properties: value (string, required): the number in E.164; "
                "country (string): its ISO 3166-1 alpha-2 region. Id contributing property: value.",
                extension_types=["new-sco"],
                **common,
            ),
            stix2.ExtensionDefinition(
                id=WALLET_EXTENSION,
                name="x-vigie-crypto-wallet",
                description="A cryptocurrency address adverts ask payment to, as a cyber-observable.",
                schema="Properties: value (string, required): the address; currency (string): the "
                "currency and chain, e.g. usdt-trc20, btc. Id contributing property: value.",
                extension_types=["new-sco"],
                **common,
            ),
            stix2.ExtensionDefinition(
                id=EVIDENCE_EXTENSION,
                name=EVIDENCE,
                description="The evidence a flagged post's observation rests on.",
                schema="Properties: post_key (string): Vigie's key of the post; page_sha256 (string): "
                "SHA-256 of the page markup the post was read from (the hash a takedown referral "
                "cites); content_sha256 (string): SHA-256 of the stored post; text_sha256 (string): "
                "SHA-256 of the post's text in UTF-8; captured_at (timestamp).",
                extension_types=["property-extension"],
                **common,
            ),
        ]

    def keep(self, made: Any) -> Any:
        return self.objects.setdefault(made.id, made)

    def sdo(self, cls: Any, kind: str, *parts: str, **properties: Any) -> Any:
        return self.keep(
            cls(
                id=_sdo_id(kind, *parts),
                created_by_ref=self.identity.id,
                object_marking_refs=self.marks,
                allow_custom=True,
                **properties,
            )
        )

    def sco(self, cls: Any, **properties: Any) -> Any:
        return self.keep(cls(object_marking_refs=self.marks, allow_custom=True, **properties))

    def account(self, platform: str, login: str, display_name: str | None = None) -> Any:
        extra = {"display_name": display_name} if display_name else {}
        return self.sco(stix2.UserAccount, account_type=platform, account_login=login, **extra)

    def post(self, post: SharedPost) -> Any:
        refs = [
            self.account(post.platform, post.channel, post.author_name or post.channel),
            self.sco(stix2.URL, value=post.url),
        ]
        refs += [self.sco(stix2.URL, value=_with_scheme(link)) for link in post.links]
        refs += [self.account("telegram", handle) for handle in post.handles]
        refs += [self.sco(PhoneNumber, value=phone, **_country(phone)) for phone in post.phones]
        refs += [
            self.sco(CryptoWallet, value=w.partition(":")[2] or w, currency=w.partition(":")[0])
            for w in post.wallets
        ]
        files = [
            self.sco(stix2.File, hashes={"SHA-256": image.sha256}, **_mime(image.content_type))
            for image in post.images
        ]
        refs += files
        if post.text:
            refs.append(
                self.sco(
                    stix2.Artifact,
                    mime_type="text/plain",
                    payload_bin=base64.b64encode(post.text.encode("utf-8")).decode("ascii"),
                    hashes={"SHA-256": post.text_sha256},
                )
            )
        created = _time(post.first_seen, post.captured_at)
        modified = max(created, _time(post.updated_at, created))
        observed_at = _time(post.published_at, post.captured_at)
        evidence = {
            "extension_type": "property-extension",
            "post_key": post.key,
            "content_sha256": post.content_sha256,
            "text_sha256": post.text_sha256,
            "captured_at": _time(post.captured_at, created),
        }
        if post.page_sha256:
            evidence["page_sha256"] = post.page_sha256
        observed = self.sdo(
            stix2.ObservedData,
            "observed-data",
            post.key,
            created=created,
            modified=modified,
            first_observed=observed_at,
            last_observed=observed_at,
            number_observed=1,
            object_refs=list(dict.fromkeys(r.id for r in refs)),
            labels=["smuggling-advert"],
            extensions={EVIDENCE_EXTENSION: evidence},
        )
        for office in post.payments:
            identity = self.sdo(
                stix2.Identity,
                "identity",
                "payment-office",
                office,
                created=DEFINED,
                modified=DEFINED,
                name=office,
                identity_class="organization",
                sectors=["financial-services"],
                description="Payment office holding migrants' money until arrival, as adverts describe it.",
            )
            self.sdo(
                stix2.Relationship,
                "relationship",
                observed.id,
                "related-to",
                identity.id,
                created=created,
                modified=created,
                relationship_type="related-to",
                source_ref=observed.id,
                target_ref=identity.id,
                description="The advert names this office to pay through.",
            )
        for image, file in zip([i for i in post.images], files, strict=True):
            if image.ocr_text:
                self.sdo(
                    stix2.Note,
                    "note",
                    post.key,
                    "ocr",
                    image.sha256,
                    created=created,
                    modified=modified,
                    abstract="Text read in the advert's image",
                    content=image.ocr_text,
                    object_refs=[observed.id, file.id],
                )
        if post.review_reason:
            self.sdo(
                stix2.Note,
                "note",
                post.key,
                "review",
                created=_time(post.review_decided_at, created),
                modified=_time(post.review_decided_at, created),
                abstract=f"Analyst's assessment: {post.review_decision or 'reviewed'}",
                content=post.review_reason,
                object_refs=[observed.id],
            )
        return observed

    def bundle(self) -> stix2.Bundle:
        observed = {post.key: self.post(post) for post in self.selection.posts}
        by_key = {post.key: post for post in self.selection.posts}
        for network in self.selection.networks:
            keys = [k for k in network.post_keys if k in observed]
            if not keys:
                continue
            refs = [observed[k].id for k in keys]
            refs += [self.account(by_key[k].platform, by_key[k].channel, None).id for k in keys]
            created = _time(network.first_seen, DEFINED)
            modified = max(created, _time(network.last_seen, created))
            grouping = self.sdo(
                stix2.Grouping,
                "grouping",
                network.network_id,
                created=created,
                modified=modified,
                name=f"Smuggling network {network.network_id}",
                description=f"Sources linked by what their flagged posts share: {', '.join(network.sources)}.",
                context="suspicious-activity",
                object_refs=list(dict.fromkeys(r for r in refs if r in self.objects)),
            )
            self.sdo(
                stix2.Note,
                "note",
                network.network_id,
                "profile",
                created=created,
                modified=modified,
                abstract=f"Profile of smuggling network {network.network_id}",
                content=network_summary(network),
                object_refs=[grouping.id],
            )
        return stix2.Bundle(
            objects=list(self.objects.values()),
            id=f"bundle--{stable_uuid('stix-bundle', *sorted(self.objects))}",
            allow_custom=True,
        )


def _with_scheme(link: str) -> str:
    return link if link.startswith(("http://", "https://")) else f"https://{link}"


def _country(phone: str) -> dict[str, str]:
    import phonenumbers

    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(phone))
    except phonenumbers.NumberParseException:
        return {}
    return {"country": region} if region and region != "ZZ" else {}


def _mime(content_type: str | None) -> dict[str, str]:
    return {"mime_type": content_type} if content_type else {}


def build_bundle(selection: Selection, markings: Markings, organisation: str) -> stix2.Bundle:
    return _Builder(selection, markings, organisation).bundle()


def bundle_json(bundle: stix2.Bundle) -> str:
    return str(bundle.serialize(pretty=True, ensure_ascii=False))
