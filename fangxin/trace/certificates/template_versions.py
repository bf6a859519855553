"""合格证 template versions (template_versions.toml): what an imported certificate printed."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path
from typing import Any

from fangxin.trace.certificates.records import (
    BASIS,
    BASIS_LABELS,
    COMMITMENTS,
    CertificateError,
    normalise_basis,
)

VERSIONS_FILE = Path(__file__).with_name("template_versions.toml")
CURRENT = "2026"


@functools.cache
def versions() -> dict[str, dict[str, Any]]:
    """Return the template versions by their year."""
    with VERSIONS_FILE.open("rb") as fh:
        found: dict[str, dict[str, Any]] = tomllib.load(fh)["versions"]
    return found


def printed(
    version: str, kind: str, basis: list[str], commitment: str | None
) -> tuple[str, list[str], list[str]]:
    """Return (commitment, basis codes, basis labels) as the certificate prints them.

    A 2026 certificate prints the fixed wording; an older one is imported as printed: its
    commitment text is required and its basis must be that template's labels, kept verbatim.
    """
    codes = normalise_basis(basis)
    if version == CURRENT:
        if commitment is not None and commitment != COMMITMENTS[kind]:
            raise CertificateError("commitment", "the 2026 template's commitment text is fixed")
        return COMMITMENTS[kind], codes, [BASIS_LABELS[c] for c in codes]
    if commitment is None:
        raise CertificateError(
            "commitment", f"an imported {version} certificate states its commitment as printed"
        )
    allowed = versions()[version]["labels"]
    wrong = [b for b in basis if b not in allowed]
    if wrong:
        raise CertificateError(
            "basis",
            f"{wrong[0]!r} is not a basis label of the {version} template; "
            f"give the labels as printed: {'、'.join(allowed)}",
        )
    return commitment, codes, list(dict.fromkeys(basis))


def shown_labels(codes: list[str], printed_labels: list[str] | None) -> list[str]:
    """Return the basis labels to show: as printed, else the 2026 labels of the codes."""
    if printed_labels is not None:
        return list(printed_labels)
    return [BASIS_LABELS[c] for c in BASIS if c in codes]
