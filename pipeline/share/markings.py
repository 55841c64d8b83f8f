"""TLP and PAP markings from `config.sharing`, as each format spells them.

MISP: the `tlp` and `PAP` taxonomies' tags ("tlp:amber", "tlp:amber+strict", "PAP:AMBER").
STIX 2.1: TLP 2.0 as the marking-definition objects OASIS publishes for it (fixed ids, the
TLP 2.0 property extension; stix2's built-in TLP_* objects are TLP 1.0, without CLEAR or
AMBER+STRICT). STIX has no PAP marking: PAP is a statement marking named "PAP:AMBER"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vigie.config import SharingConfig

TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_CREATED = "2022-10-01T00:00:00.000Z"
TLP2_IDS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
# What each PAP level lets the recipient do (FIRST's Permissible Actions Protocol).
PAP_MEANING = {
    "clear": "no restriction on the actions recipients take with this information",
    "green": "active actions allowed on the sources (e.g. visiting them, querying them)",
    "amber": "passive actions only: no action the sources could detect",
    "red": "non-detectable actions only, on the recipient's own data",
}
# MISP distribution a partner's instance starts from: TLP limits how far the event goes.
MISP_DISTRIBUTION = {"clear": 3, "green": 1, "amber": 0, "amber+strict": 0, "red": 0}


@dataclass(frozen=True, slots=True)
class Markings:
    tlp: str  # clear, green, amber, amber+strict, red
    pap: str  # clear, green, amber, red

    @property
    def misp_tags(self) -> list[str]:
        return [f"tlp:{self.tlp}", f"PAP:{self.pap.upper()}"]

    @property
    def misp_distribution(self) -> int:
        return MISP_DISTRIBUTION[self.tlp]

    @property
    def tlp_name(self) -> str:
        return f"TLP:{self.tlp.upper()}"

    @property
    def pap_name(self) -> str:
        return f"PAP:{self.pap.upper()}"

    @property
    def stix_tlp_id(self) -> str:
        return TLP2_IDS[self.tlp]

    @property
    def pap_statement(self) -> str:
        return f"{self.pap_name}: {PAP_MEANING[self.pap]}."


def markings_of(sharing: SharingConfig) -> Markings:
    return Markings(tlp=sharing.tlp, pap=sharing.pap)
