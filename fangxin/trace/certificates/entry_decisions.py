"""Decisions on external certificates and proofs (visual check), and the rules an entry applied."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy.orm import Session

from fangxin.trace.certificates.entry_proofs import EntryProofOut
from fangxin.trace.certificates.entry_rules import rule
from fangxin.trace.certificates.models import EntryCheck
from fangxin.trace.certificates.records import CertificateConflict
from fangxin.trace.certificates.schemas import EntryRuleOut, VisualCheckIn

STATUS_LABELS = {
    "admitted": "准予入场",
    "pending_test": "待快检",
    "refused": "拒绝入场",
    "external_certificate": "外部合格证·待人工查验",
}
FLAG_LABELS = {
    "no_certificate": "无合格证",
    "certificate_unknown": "平台外合格证（纸质、手写或其他系统）",
    "other_proof": "其他合格证明",
    "certificate_voided": "合格证已作废",
    "certificate_recalled": "批次已召回",
    "signature_invalid": "签名校验失败",
    "product_mismatch": "产品名称不符",
    "unit_mismatch": "计量单位不符",
    "quantity_exceeds_certificate": "数量超出合格证",
    "copied_code_suspected": "疑似复制码",
    "tested_negative": "快检阴性",
    "tested_positive": "快检阳性",
    "test_item_unfit": "检测项目不适用于该类食品",
    "visual_check_passed": "人工查验通过",
    "visual_check_test": "人工查验后送快检",
    "visual_check_failed": "人工查验不符",
    "refused_as_unknown": "曾因平台查不到合格证被拒（规则变更前）",
}
OUTCOMES = {
    "admit": ("admitted", "visual_check_passed"),
    "test": ("pending_test", "visual_check_test"),
    "refuse": ("refused", "visual_check_failed"),
}


def visual_check(
    session: Session, entry: EntryCheck, data: VisualCheckIn, now: dt.datetime, key_id: int | None
) -> None:
    """Record the desk's visual check of an external certificate or proof and decide the lot."""
    session.refresh(entry, with_for_update=True)  # two desks checking at once: one decides
    if entry.status != "external_certificate":
        raise CertificateConflict(f"entry {entry.id} is {entry.status}: no visual check is due")
    status, flag = OUTCOMES[data.outcome]
    entry.status = status
    entry.flags = [*entry.flags, flag]
    entry.visual_checked_at = now
    entry.visual_note = data.note
    entry.visual_key_id = key_id
    entry.decided_at = None if status == "pending_test" else now
    session.flush()


def _rule(name: str) -> EntryRuleOut:
    found = rule(name)
    return EntryRuleOut(name=found["name"], rule=found["rule"], source=found["source"])


def applied_rules(
    entry: EntryCheck, proofs: list[EntryProofOut], item_names: Mapping[str, str] | None = None
) -> list[EntryRuleOut]:
    """Return the rules behind an entry's status, each with its source, in the order applied."""
    out = []
    flags = set(entry.flags)
    if entry.certificate_id is not None:
        out.append(_rule("certificate"))
    if "certificate_unknown" in flags or ("other_proof" in flags and not entry.certificate_id):
        out.append(_rule("external_certificate"))
    if "no_certificate" in flags:
        out.append(_rule("no_certificate"))
    for proof in proofs:
        out.append(
            EntryRuleOut(name=proof.type_name, rule=f"编号 {proof.number}", source=proof.source)
        )
    test = entry.test_rule
    if test is not None:
        where = test["category"] or "未知类别"
        item = (item_names or {}).get(test["item"], test["item"])
        verb = "适用于" if test["fits"] else "不适用于"
        out.append(
            EntryRuleOut(
                name="检测项目与食品类别",
                rule=f"检测项目 {item} {verb}{where}，阴性结果"
                + ("可据以放行" if test["fits"] else "不能据以放行"),
                source=test["source"] or "食品类别不在对照表中：不能判断检测项目是否适用",
            )
        )
    return out
