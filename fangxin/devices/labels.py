"""Chinese names of the devices area's codes, for pages and exports (codes stay in the API)."""

from __future__ import annotations

SITE_KINDS = {"market": "农贸市场", "kitchen": "餐饮服务单位"}
DEVICE_KINDS = {
    "rapid_test": "快检仪",
    "camera": "摄像头",
    "nvr": "硬盘录像机",
    "scale": "电子秤",
    "sensor": "传感器",
}
CONNECTIVITY = {"online": "在线", "offline": "离线", "unknown": "未知"}
CAUSES = {
    "timeout": "心跳超时",
    "lwt": "设备离线消息（含遗嘱）",
    "state": "设备上报离线",
    "registered": "登记后未上线",
    "message": "收到消息",
    "deactivated": "设备停用",
}
ALARM_STATUSES = {"new": "新告警", "notified": "已通知", "rectifying": "整改中", "closed": "已关闭"}
ALARM_RESOLUTIONS = {"rectified": "已整改", "false_alarm": "误报"}
ALARM_CATEGORIES = {"ai": "AI识别", "device": "设备", "other": "其他"}


def zh(table: dict[str, str], code: str | None) -> str:
    """Return a code's Chinese name from a table; unknown codes are marked, never shown bare."""
    if code is None or code == "":
        return "—"
    return table.get(code) or f"其他（{code}）"


def category_name(category: str | None, kind: str) -> str:
    """Return a site's category in Chinese (its kind's name for sites without a category)."""
    return category or SITE_KINDS.get(kind, kind)


BEAT_FIELDS = {
    "interval_s": "心跳间隔（秒）",
    "fps": "帧率",
    "bitrate_kbps": "码率（kbps）",
    "storage_free_gb": "剩余存储（GB）",
    "temp_c": "温度（℃）",
}
