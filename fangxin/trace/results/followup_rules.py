"""The rules a positive's follow-up applies, as data with their source (shown where applied).

A value that could not be checked against the text of its source says so (待核实), and a value
of our own choosing is a local setting (本地设置): neither is passed off as the law.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

FOOD_SAFETY_LAW = "《中华人民共和国食品安全法》"


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of the follow-up: what it says, where it comes from, whether that is checked."""

    code: str
    text_zh: str
    source: str
    # "verified": the source says it; "unconfirmed": from memory (待核实); "local": our choice.
    status: str = "verified"

    @property
    def source_zh(self) -> str:
        """Return the source as users read it, with its status when it is not verified."""
        if self.status == "unconfirmed":
            return f"{self.source}（待核实）"
        if self.status == "local":
            return f"本地设置：{self.source}"
        return self.source


RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        Rule(
            "suspend",
            "快检阳性即暂停销售，待复测、送检或复检结果",
            f"{FOOD_SAFETY_LAW}第六十四条；《食用农产品市场销售质量安全监督管理办法》",
            "unconfirmed",
        ),
        Rule(
            "screening",
            "快检是筛查：结果存疑的应送有资质（CMA）的检验机构检验，以检验结论为准",
            f"{FOOD_SAFETY_LAW}第一百一十二条、第八十七条",
        ),
        Rule(
            "repeats",
            "同一方法复测两次：两次均为阴性方可排除；一阴一阳送检；两次均阳性确认不合格",
            "GB/T 5009.199-2003（至少复测两次）",
            "unconfirmed",
        ),
        Rule(
            "recheck",
            "监管部门快检结果有异议的，被检者可在收到结果起4小时内申请复检，复检不得采用快速检测方法",
            f"{FOOD_SAFETY_LAW}第八十八条",
        ),
        Rule(
            "disposal",
            "不合格批次停止销售，在见证下销毁或无害化处理并记录，报告县级市场监管部门；不得退货",
            "《食用农产品市场销售质量安全监督管理办法》（市场开办者责任）",
            "unconfirmed",
        ),
        Rule(
            "banned",
            "非食用物质、禁用药物（瘦肉精、孔雀石绿、硼砂、吊白块等）检出即封存，"
            "以法定方法确认，报告并移送公安机关（行刑衔接），不以复测排除",
            "整顿办函〔2010〕50号；农业农村部公告第250号；"
            "《平顶山市深化食品安全放心工程建设攻坚行动工作方案（2022—2024年）》二",
        ),
        Rule(
            "upstream",
            "追溯上游时同时通报产地农业农村部门",
            "《中华人民共和国农产品质量安全法》（产地监管）",
            "unconfirmed",
        ),
        Rule(
            "recheck_start",
            "4小时申请期自结果进入本系统（即市场告知被检者）时起算",
            "以入库时间代替被检者收到结果的时间",
            "local",
        ),
    )
}

REPEATS = 2
RECHECK_WINDOW = dt.timedelta(hours=4)
# A 复检 or lab confirmation must not use a rapid method (Art. 88): methods naming these are.
RAPID_METHOD_MARKERS = ("快检", "快速", "速测", "胶体金", "酶抑制", "试纸", "试剂盒", "5009.199")
DISPOSAL_METHODS = {"destroy": "销毁", "harmless": "无害化处理"}

STATES = {
    "suspended": "暂停销售，待复测",
    "recheck_window": "暂停销售，复检申请期",
    "rechecking": "暂停销售，复检中",
    "lab_pending": "暂停销售，已送检",
    "sealed": "已封存，待法定方法确认",
    "confirmed": "确认不合格，待处置",
    "disposed": "已销毁或无害化处理",
    "cleared": "已排除，恢复销售",
    "closed": "已结案",
}
OPEN_CASE = frozenset(STATES) - {"cleared", "closed"}
# States of the workflow before issue 13: history written then still names them.
LEGACY_STATES = {
    "retest_pending": "待复检（旧流程）",
    "sale_stopped": "已下架（旧流程）",
    "destroyed": "已销毁（旧流程）",
    "returned": "已退货（旧流程，已不允许）",
}
STATE_LABELS = LEGACY_STATES | STATES
# action: (states it may be taken in, state it leads to; None: the action decides)
ACTIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "send_to_lab": (frozenset({"suspended"}), "lab_pending"),
    "request_recheck": (frozenset({"recheck_window"}), "rechecking"),
    "accept_result": (frozenset({"recheck_window"}), "confirmed"),
    "lab_result": (frozenset({"lab_pending", "rechecking", "sealed"}), None),
    "dispose": (frozenset({"confirmed"}), "disposed"),
    "report": (OPEN_CASE, None),
    "refer": (frozenset({"sealed", "confirmed", "disposed"}), None),
    "trace_upstream": (OPEN_CASE, None),
    "notify": (OPEN_CASE, None),
    "close": (frozenset({"disposed"}), "closed"),
}
# The market's own lab may not record a lab's verdict nor close the case (§8).
REGULATOR_ACTIONS = frozenset({"lab_result", "close"})
# Which rule each state and action applies: the follow-up page shows its source there.
STATE_RULES = {
    "suspended": ("suspend", "repeats"),
    "recheck_window": ("suspend", "recheck", "recheck_start"),
    "rechecking": ("recheck",),
    "lab_pending": ("screening",),
    "sealed": ("banned",),
    "confirmed": ("disposal",),
    "disposed": ("disposal",),
}
ACTION_RULES = {
    "send_to_lab": "screening",
    "request_recheck": "recheck",
    "accept_result": "recheck",
    "lab_result": "screening",
    "dispose": "disposal",
    "report": "disposal",
    "refer": "banned",
    "trace_upstream": "upstream",
}
ACTION_LABELS = {
    "send_to_lab": "送检（有资质的 CMA 检验机构）",
    "request_recheck": "登记被检者的复检申请",
    "accept_result": "结果生效（未在时限内申请复检）",
    "lab_result": "录入检验机构结论",
    "dispose": "见证销毁或无害化处理",
    "report": "报告县级市场监管部门",
    "refer": "移送公安机关（行刑衔接）",
    "trace_upstream": "追溯上游并通报产地农业农村部门",
    "notify": "通知监管部门（检监联动）",
    "close": "结案",
}
EVENT_LABELS = ACTION_LABELS | {
    "open": "阳性立案，暂停销售",
    "retest": "复测",
    "confirm": "两次复测阳性，确认不合格",
    "clear": "两次复测阴性，排除",
    "migrate": "系统升级时迁移",
}
TESTED_BY = {"market": "市场自检", "regulator": "监管部门快检"}
# Former steps: what to do instead (退货 is refused for good: it puts the lot back on sale).
RETIRED_ACTIONS = {
    "return": "退货 (return to supplier) is not allowed: it puts the lot back on the market;"
    " dispose of it (销毁或无害化处理) instead",
    "stop_sale": "sale is suspended (暂停销售) as soon as a positive arrives: no step needed",
    "seal": "sealing (封存) happens at once for banned substances; other lots are disposed of",
    "destroy": "use dispose with disposal_method destroy (销毁) and a witness",
    "lab_confirm": "use lab_result",
}


def is_rapid_method(method: str) -> bool:
    """Tell whether a method names a rapid test (not allowed for 复检 or confirmation)."""
    return any(marker.lower() in method.lower() for marker in RAPID_METHOD_MARKERS)
