"""TITLE: the job position itself (总裁, 常务副市长, 首席财务官), without the organisation or place before it, with
the rank words that belong to it. No library does this for Chinese: a curated lexicon of positions, optional rank
prefixes, longest match first; the merge (raner_pool.recognizers.merge) keeps it off the model's ORG/LOC/PER."""

from __future__ import annotations

import re
from datetime import datetime

from raner_pool.entities import Entity

POSITIONS = (
    "总干事", "行政长官", "主管", "风险官", "合规官", "数据官", "技术官", "运营官", "信息官",
    "首席执行官", "首席财务官", "首席技术官", "首席运营官", "首席信息官", "首席经济学家", "首席科学家", "首席代表",
    "执行官", "财务官", "董事长", "董事", "总裁", "总经理", "经理", "总监", "监事长", "监事", "合伙人",
    "总统", "总理", "首相", "主席", "秘书长", "秘书", "部长", "省长", "市长", "县长", "区长", "镇长",
    "乡长", "村长", "州长", "议长", "议员", "大使", "领事", "发言人", "书记", "局长", "处长", "科长", "厅长",
    "司长", "署长", "委员", "主任", "会长", "社长", "行长", "所长", "院长", "校长", "厂长", "站长", "队长", "组长",
    "班长", "总编辑", "主编", "编辑", "记者", "主持人", "制片人", "导演", "教授", "讲师", "研究员", "院士",
    "工程师", "设计师", "分析师", "会计师", "律师", "法官", "检察官", "警官", "医生", "医师", "护士", "教练",
    "CEO", "CFO", "CTO", "COO",
    "党委书记", "党组书记", "纪委书记", "检察长", "支队长", "大队长", "中队长", "护士长", "主任医师", "主治医师",
    "主管护师", "总会计师", "总工程师", "总设计师", "总经济师", "公使", "参赞",
)
RANKS = ("常务", "执行", "首席", "高级", "资深", "代理", "名誉", "荣誉", "独立", "轮值", "副", "总", "助理")
"""Words that belong to the position when they come right before it (常务副市长, 执行董事, 副总裁)."""
FIELDS = ("财务", "技术", "销售", "市场", "运营", "人事", "行政", "营销", "产品", "项目", "风险", "法务", "投资")
"""What a 总监, 经理 or 主管 is in charge of, when it comes right before it (财务总监, 项目经理)."""
PATTERN = re.compile(
    "(?:" + "|".join(sorted(RANKS, key=len, reverse=True)) + "){0,3}"
    "(?:(?:" + "|".join(FIELDS) + ")(?=总监|经理|主管))?"
    r"(?:驻[\u4e00-\u9fff](?=大使|公使|领事|参赞|代表))?"
    r"(?:首席[\u4e00-\u9fff]{2}(?:官|师)|"
    + "|".join(sorted(POSITIONS, key=len, reverse=True)) + ")"
    "(?!会)"
)
"""驻华大使 is one title (the envoy's post names the country he is sent to); any 首席XX官/师 is one (首席战略官);
记者会 (a press conference) is no 记者."""
CUE = re.compile("|".join(sorted({p[-1] for p in POSITIONS} | {"CEO", "CFO", "CTO", "COO"})))


class TitleRecognizer:
    """TITLE entities (value None)."""

    type = "TITLE"

    def cue(self, text: str) -> bool:
        return CUE.search(text) is not None

    def recognize(self, text: str, reference: datetime) -> list[Entity]:
        return [Entity("TITLE", m.start(), m.end(), m.group(), 1.0, None, "rule") for m in PATTERN.finditer(text)]
