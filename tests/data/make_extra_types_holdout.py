"""Build tests/data/extra_types_holdout.jsonl: a second, held-out hand-written gold set for
the rule types TIME, MONEY, PERCENT and TITLE.

It follows the conventions of tests/data/make_extra_types.py exactly (same entity tuples,
same span rules, same value formats; only MONEY, PERCENT and absolute TIME values are
scored), with 80 new sentences written by hand for this file (nothing copied from the
first set or from a corpus), in three styles: news wire, company announcements /
finance, and everyday chat or notices, plus a few sentences with no entity of these
types (several with traps: numbers that are neither money nor percent, season words in
event names, words containing 长/官/师 that are not titles).

Each gold entity is given as (type, span_text, occurrence, value), where `occurrence`
is the 0-based index of the occurrence of span_text in the sentence (0 = the first
one).  Offsets are computed with str.find (code points, end exclusive) and checked:
every span must be found, no two gold spans may overlap, and the values are
cross-checked against the span text where that can be done mechanically.

Two small extensions of the cross-checks of make_extra_types.py, needed by forms this
set uses and the first one does not:
  * numbers may carry thousands separators ("1,200万元" -> 12000000);
  * a year written in Chinese digits ("二〇二二年") names the year just as "2022年"
    does, so such a TIME is absolute and carries its interval value.

Run:  python3 tests/data/make_extra_types_holdout.py
"""

from __future__ import annotations

import calendar
import itertools
import json
import re
from decimal import Decimal
from pathlib import Path

OUT = Path(__file__).with_name("extra_types_holdout.jsonl")


# --------------------------------------------------------------------------
# helpers that build the (type, span, occurrence, value) tuples
# (copied from make_extra_types.py)
# --------------------------------------------------------------------------

def _bound(part: str, last: bool) -> str:
    """Expand a partial ISO stamp (YYYY, YYYY-MM, YYYY-MM-DD, YYYY-MM-DDTHH,
    YYYY-MM-DDTHH:MM) to its first (last=False) or last (last=True) second."""
    m = re.fullmatch(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2}))?)?)?)?", part)
    assert m, part
    y, mo, d, h, mi = m.groups()
    y = int(y)
    mo_i = (12 if last else 1) if mo is None else int(mo)
    if d is None:
        d_i = calendar.monthrange(y, mo_i)[1] if last else 1
    else:
        d_i = int(d)
        assert 1 <= d_i <= calendar.monthrange(y, mo_i)[1], part
    h_i = (23 if last else 0) if h is None else int(h)
    mi_i = (59 if last else 0) if mi is None else int(mi)
    s_i = 59 if last else 0
    return f"{y:04d}-{mo_i:02d}-{d_i:02d}T{h_i:02d}:{mi_i:02d}:{s_i:02d}"


def iv(start: str, end: str | None = None) -> dict:
    """Interval value: first second of `start` .. last second of `end` (default: start)."""
    return {"start": _bound(start, False), "end": _bound(end or start, True)}


def TA(span, start, end=None, occ=0):
    """Absolute TIME (names the year) with its interval value."""
    return ("TIME", span, occ, iv(start, end))


def T(span, occ=0):
    """Relative / duration / recurring TIME: value null."""
    return ("TIME", span, occ, None)


def M(span, amount, currency, approx=None, occ=0):
    return ("MONEY", span, occ, {"amount": amount, "currency": currency, "approx": approx})


def P(span, fraction, approx=None, occ=0):
    return ("PERCENT", span, occ, {"fraction": fraction, "approx": approx})


def TI(span, occ=0):
    return ("TITLE", span, occ, None)


# --------------------------------------------------------------------------
# the sentences
# --------------------------------------------------------------------------

SENTENCES: list[tuple[str, list[tuple]]] = [
    # ---------------- news wire ----------------
    ("二〇二二年九月，法国驻华大使在北京出席了中法文化交流活动的闭幕式。",
     [TA("二〇二二年九月", "2022-09"), TI("驻华大使")]),
    ("外交部发言人在周四的例行记者会上回应了相关提问。",
     [TI("发言人"), T("周四")]),
    ("宣传部部长郑晓宁在上午九点半召开的发布会上介绍了有关情况。",
     [TI("部长"), T("上午九点半")]),
    ("二〇一二年以来，全省森林覆盖率提高了3.2个百分点，达到百分之四十八点六。",
     [TA("二〇一二年", "2012"), P("百分之四十八点六", 0.486)]),
    ("据气象部门预测，农历八月十五晚上全市天气晴好，适宜赏月。",
     [T("农历八月十五晚上")]),
    ("今年3月，新任党委书记王建军走访了全区十二个街道的困难家庭。",
     [T("今年3月"), TI("党委书记")]),
    ("日本驻华大使馆发布通知称，签证中心将于本周末暂停对外服务。",
     [T("本周末")]),
    ("印度尼西亚总统于二〇二三年七月二十八日抵达成都，出席大运会开幕式。",
     [TI("总统"), TA("二〇二三年七月二十八日", "2023-07-28")]),
    ("中国科学院院士、南京大学物理学院院长李明在颁奖典礼上致辞。",
     [TI("院士"), TI("院长")]),
    ("市人民医院心内科主治医师刘芳已连续值班三十六个小时。",
     [TI("主治医师"), T("三十六个小时")]),
    ("台风“海葵”预计将于9月5日凌晨在福建沿海登陆，最大风力可达14级。",
     [T("9月5日凌晨")]),
    ("2024年3月15日上午九点半，全国消费者权益保护日主题活动在京启动。",
     [TA("2024年3月15日上午九点半", "2024-03-15T09:30")]),
    ("教育部副部长在会上透露，二〇二五年全国高校毕业生预计达到1222万人。",
     [TI("副部长"), TA("二〇二五年", "2025")]),
    ("国家统计局首席统计师表示，10月份居民消费价格同比下降0.2%，环比持平。",
     [TI("首席统计师"), T("10月份"), P("0.2%", 0.002)]),
    ("据海关统计，今年前10个月我国货物贸易进出口总值34.32万亿元，同比微增0.03%。",
     [T("今年前10个月"), M("34.32万亿元", "34320000000000", "CNY"), P("0.03%", 0.0003)]),
    ("市消防救援支队支队长介绍，今年以来全市共发生电动自行车火灾八十六起。",
     [TI("支队长"), T("今年")]),
    ("首届世界互联网大会于二〇一四年十一月十九日在浙江乌镇开幕。",
     [TA("二〇一四年十一月十九日", "2014-11-19")]),
    ("每年农历正月十五，这座古镇都会举办盛大的灯会，吸引数十万游客。",
     [T("每年农历正月十五")]),
    ("二〇二一年至二〇二三年，该县累计投入乡村振兴资金5.6亿元。",
     [TA("二〇二一年至二〇二三年", "2021", "2023"), M("5.6亿元", "560000000", "CNY")]),
    ("最高人民检察院副检察长在发布会上通报，第三季度全国检察机关起诉人数同比下降百分之十二点五。",
     [TI("副检察长"), T("第三季度"), P("百分之十二点五", 0.125)]),
    ("地震发生在今天凌晨3点17分，震源深度10公里，暂无人员伤亡报告。",
     [T("今天凌晨3点17分")]),
    ("第19届亚运会于2023年9月23日在杭州开幕，比原计划推迟了一年。",
     [TA("2023年9月23日", "2023-09-23"), T("一年")]),
    ("国家航天局副局长宣布，嫦娥六号将于2024年上半年择机发射。",
     [TI("副局长"), TA("2024年上半年", "2024-01", "2024-06")]),
    ("一架客机今天中午12点40分在白云机场安全降落，机上127名乘客均无大碍。",
     [T("今天中午12点40分")]),
    ("该省副省长在二〇二三年十二月二十六日的会议上透露，全省粮食产量连续十年稳定在700亿斤以上。",
     [TI("副省长"), TA("二〇二三年十二月二十六日", "2023-12-26"), T("十年")]),

    # ---------------- company announcements / finance ----------------
    ("星海股份公告称，公司2023年实现营业收入1,200万元，同比下降15%左右。",
     [TA("2023年", "2023"), M("1,200万元", "12000000", "CNY"), P("15%", 0.15, "about")]),
    ("东方电子任命张宏为首席战略官，负责公司的海外扩张计划，任期三年。",
     [TI("首席战略官"), T("三年")]),
    ("丰田汽车本财年营业利润预计达到3.6万亿日元，创历史新高。",
     [T("本财年"), M("3.6万亿日元", "3600000000000", "JPY")]),
    ("公司副董事长兼首席运营官李卫东表示，本季度订单量环比增长了10%左右。",
     [TI("副董事长"), TI("首席运营官"), T("本季度"), P("10%", 0.1, "about")]),
    ("截至三季度末，该行不良贷款余额为123.4亿元，不良率较年初下降0.05个百分点。",
     [T("三季度末"), M("123.4亿元", "12340000000", "CNY"), T("年初")]),
    ("受汇率波动影响，该集团上半财年净利润同比下降18.7%，至2,350万美元。",
     [T("上半财年"), P("18.7%", 0.187), M("2,350万美元", "23500000", "USD")]),
    ("这家跨境电商今年第二季度营收为5.8亿英镑，同比增长百分之二十一点四。",
     [T("今年第二季度"), M("5.8亿英镑", "580000000", "GBP"), P("百分之二十一点四", 0.214)]),
    ("本次定增发行价格为每股12.36元，共募集资金24.72亿元。",
     [M("12.36元", "12.36", "CNY"), M("24.72亿元", "2472000000", "CNY")]),
    ("这家日本电子巨头第三财季净亏损达7,900亿日元，远超市场预期。",
     [T("第三财季"), M("7,900亿日元", "790000000000", "JPY")]),
    ("瑞丰银行近五年的平均净资产收益率保持在12%左右。",
     [T("近五年"), P("12%", 0.12, "about")]),
    ("投资总监周涛管理的三只产品上个季度平均回报率为百分之六点八。",
     [TI("投资总监"), T("上个季度"), P("百分之六点八", 0.068)]),
    ("远航新能源2023年研发投入83.5亿元，同比增长约18%，研发人员超过两万人。",
     [TA("2023年", "2023"), M("83.5亿元", "8350000000", "CNY"), P("18%", 0.18, "about")]),
    ("某外资银行首席执行官表示，集团计划到2026年削减约30亿美元成本。",
     [TI("首席执行官"), TA("2026年", "2026"), M("30亿美元", "3000000000", "USD", "about")]),
    ("集团总会计师刘敏在年度股东大会上作了财务决算报告。",
     [TI("总会计师")]),
    ("首席投资官预计，明年上半年A股市场将呈现震荡上行格局。",
     [TI("首席投资官"), T("明年上半年")]),
    ("该公司拟向全体股东每10股派发现金红利3.5元（含税）。",
     [M("3.5元", "3.5", "CNY")]),
    ("该项目总投资约4.5亿澳元，预计于2026年第三季度投产。",
     [M("4.5亿澳元", "450000000", "AUD", "about"), TA("2026年第三季度", "2026-07", "2026-09")]),
    ("这家矿企上周五收于每股45.6加元，市值约120亿加元。",
     [T("上周五"), M("45.6加元", "45.6", "CAD"), M("120亿加元", "12000000000", "CAD", "about")]),
    ("这家俄罗斯石油公司二〇二三年上缴税费约2.4万亿卢布。",
     [TA("二〇二三年", "2023"), M("2.4万亿卢布", "2400000000000", "RUB", "about")]),
    ("这家港股物业公司宣布派息每股0.15港元，派息率约百分之四十。",
     [M("0.15港元", "0.15", "HKD"), P("百分之四十", 0.4, "about")]),
    ("该公司拟以3,980万元收购目标公司51%的股权，交易预计在本年度内完成。",
     [M("3,980万元", "39800000", "CNY"), P("51%", 0.51), T("本年度")]),
    ("昨天上午，华建集团党委书记、董事长李晓东在签约仪式上致辞。",
     [T("昨天上午"), TI("党委书记"), TI("董事长")]),
    ("大飞机项目总设计师介绍，首批国产客机将于二〇二六年交付，单价约一亿美元。",
     [TI("总设计师"), TA("二〇二六年", "2026"), M("一亿美元", "100000000", "USD", "about")]),
    ("该公司常务副总经理透露，新工厂投产后年产值可达50亿元。",
     [TI("常务副总经理"), M("50亿元", "5000000000", "CNY")]),

    # ---------------- everyday chat and notices ----------------
    ("明天上午九点半在公司楼下集合，大巴准时出发，过时不候哦。",
     [T("明天上午九点半")]),
    ("周末带孩子去动物园，门票一大一小一共160块。",
     [T("周末"), M("160块", "160", "CNY")]),
    ("奶奶说农历腊月二十三那天全家都要回老家祭灶。",
     [T("农历腊月二十三")]),
    ("【停电通知】因线路检修，本周四上午8:30至下午5:00辖区内将暂停供电。",
     [T("本周四上午8:30至下午5:00")]),
    ("姐，我在免税店看中一个包，打完折还要2,680元，你觉得值吗？",
     [M("2,680元", "2680", "CNY")]),
    ("楼下新开的面包店开业酬宾，满100元减20元，活动持续到这个月底。",
     [M("100元", "100", "CNY"), M("20元", "20", "CNY"), T("这个月底")]),
    ("孩子发烧到39度，儿科的副主任医师说先吃药观察两天。",
     [TI("副主任医师"), T("两天")]),
    ("家长群通知：从下周一开始，学生早上七点五十前到校。",
     [T("下周一"), T("早上七点五十")]),
    ("物业费2,400元和车位管理费150元，请在下周五前交齐。",
     [M("2,400元", "2400", "CNY"), M("150元", "150", "CNY"), T("下周五")]),
    ("我上午九点半的号，结果排到中午十二点才轮到我。",
     [T("上午九点半"), T("中午十二点")]),
    ("老板说年终奖按三个月工资算，约两万五千块。",
     [T("三个月"), M("两万五千块", "25000", "CNY", "about")]),
    ("这学期的补习班每节课两小时，一共二十节，学费3,600元。",
     [T("这学期"), T("两小时"), M("3,600元", "3600", "CNY")]),
    ("小区通知：二〇二四年五月一日起，垃圾分类投放时间调整为早上7点至9点。",
     [TA("二〇二四年五月一日", "2024-05-01"), T("早上7点至9点")]),
    ("哥，我在大阪买了个电饭煲，折合下来才两万三千日元，便宜吧？",
     [M("两万三千日元", "23000", "JPY")]),
    ("李护士长让我下午两点半去三楼换药。",
     [TI("护士长"), T("下午两点半")]),
    ("去年年底抢的那台电视才3,299元，现在涨到4,000元左右了。",
     [T("去年年底"), M("3,299元", "3299", "CNY"), M("4,000元", "4000", "CNY", "about")]),
    ("店铺通知：今晚八点提前打烊，明天上午十点恢复正常营业。",
     [T("今晚八点"), T("明天上午十点")]),
    ("我打算用十年时间还清房贷，每个月还款6,500元左右。",
     [T("十年"), T("每个月"), M("6,500元", "6500", "CNY", "about")]),
    ("婚礼定在农历二月初八中午十二点，地点在老家的祠堂。",
     [T("农历二月初八中午十二点")]),
    ("听说隔壁公司今年年终奖特别多，税后拿了将近十万块。",
     [T("今年"), M("十万块", "100000", "CNY", "under")]),
    ("下个月初我要去医院复查，挂的是消化科主任医师的号。",
     [T("下个月初"), TI("主任医师")]),
    ("两个月打工赚了4,500块，给爸妈各买了一件羽绒服。",
     [T("两个月"), M("4,500块", "4500", "CNY")]),

    # ---------------- no entity of the four types (several traps) ----------------
    ("春季广交会吸引了来自两百多个国家和地区的采购商。", []),
    ("他毕业于一所师范大学，后来进入一家官方媒体工作。", []),
    ("这棵古树的长势很好，树干周长约有3.5米。", []),
    ("他的快递单号是SF1234567890，已经到了分拣中心。", []),
    ("这场比赛双方打成2比2平，加时赛中主队才以一球险胜。", []),
    ("这款笔记本电脑配备16GB内存和512GB固态硬盘，重量仅1.3公斤。", []),
    ("器官移植手术非常成功，患者的各项指标都已恢复正常。", []),
    ("贷款利率下调了25个基点，房贷月供随之减少。", []),
    ("冬令营的营员们在雪地里堆了一个三米高的雪人。", []),
]


# --------------------------------------------------------------------------
# mechanical cross-checks of the hand-written values
# (copied from make_extra_types.py; parse_number also takes thousands separators,
# and a year in Chinese digits counts as naming the year)
# --------------------------------------------------------------------------

_CN_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
             "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}


def _cn_int(s: str) -> Decimal:
    total, section, num = Decimal(0), Decimal(0), Decimal(0)
    for ch in s:
        if ch in _CN_DIGIT:
            num = Decimal(_CN_DIGIT[ch])
        elif ch in _CN_UNIT:
            if num == 0 and ch == "十":
                num = Decimal(1)
            section += num * _CN_UNIT[ch]
            num = Decimal(0)
        elif ch == "万":
            total += (section + num) * 10000
            section, num = Decimal(0), Decimal(0)
        elif ch == "亿":
            total = (total + section + num) * 100000000
            section, num = Decimal(0), Decimal(0)
        else:
            raise ValueError(f"not a Chinese numeral: {s!r}")
    return total + section + num


def parse_number(s: str) -> Decimal:
    """Arabic digits (thousands separators allowed) with optional 万/亿 multipliers, or a
    Chinese numeral (with 点)."""
    if re.fullmatch(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?[万亿]*", s):
        s = s.replace(",", "")
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([万亿]*)", s)
    if m:
        value = Decimal(m.group(1))
        for ch in m.group(2):
            value *= 10000 if ch == "万" else 100000000
        return value
    if "点" in s:
        whole, frac = s.split("点")
        digits = "".join(str(_CN_DIGIT[ch]) for ch in frac)
        return _cn_int(whole) + Decimal("0." + digits)
    return _cn_int(s)


def plain(d: Decimal) -> str:
    return format(d.normalize(), "f")


_CURRENCY_WORDS = [("新台币", "TWD"), ("美元", "USD"), ("$", "USD"), ("港元", "HKD"), ("港币", "HKD"),
                   ("欧元", "EUR"), ("英镑", "GBP"), ("日元", "JPY"), ("韩元", "KRW"), ("卢布", "RUB"),
                   ("澳元", "AUD"), ("加元", "CAD"), ("人民币", "CNY"), ("￥", "CNY"), ("块", "CNY"),
                   ("元", "CNY")]

_APPROX_BEFORE = [("将近", "under"), ("不到", "under"), ("不足", "under"), ("大约", "about"),
                  ("超过", "over"), ("高达", "over"), ("近", "under"), ("逾", "over"), ("超", "over"),
                  ("约", "about")]
_APPROX_AFTER = [("左右", "about"), ("上下", "about")]


def approx_from_context(text: str, start: int, end: int):
    for word, kind in _APPROX_AFTER:
        if text.startswith(word, end):
            return kind
    for word, kind in _APPROX_BEFORE:
        if text[:start].endswith(word):
            return kind
    return None


_CN_YEAR = r"[〇零一二三四五六七八九]{4}"


def span_years(span: str) -> list[str]:
    """The years a TIME span names, in order: "2022年" or "二〇二二年" -> "2022"."""
    years = []
    for m in re.finditer(r"(\d{4}|" + _CN_YEAR + r")年", span):
        y = m.group(1)
        years.append(y if y.isdigit() else "".join(str(_CN_DIGIT[ch]) for ch in y))
    return years


def single_date(span: str) -> str | None:
    """For a span that starts with a year in Chinese digits and names no range, the ISO
    prefix its value must start with ("二〇二三年七月二十八日" -> "2023-07-28"); else None."""
    m = re.match("(" + _CN_YEAR + r")年(?:([一二三四五六七八九十]+)月(?:([一二三四五六七八九十]+)日)?)?", span)
    if not m or "至" in span or "到" in span:
        return None
    out = span_years(m.group(0))[0]
    if m.group(2):
        out += f"-{int(_cn_int(m.group(2))):02d}"
        if m.group(3):
            out += f"-{int(_cn_int(m.group(3))):02d}"
    return out


def check_value(text: str, etype: str, span: str, start: int, end: int, value) -> None:
    where = f"{span!r} in {text!r}"
    if etype == "MONEY":
        currency = None
        rest = span
        for word, code in _CURRENCY_WORDS:
            if word in rest:
                currency = currency or code
                rest = rest.replace(word, "")
        assert currency == value["currency"], f"currency {value['currency']} vs {currency}: {where}"
        amount = plain(parse_number(rest))
        assert amount == value["amount"], f"amount {value['amount']} vs {amount}: {where}"
        assert re.fullmatch(r"[0-9]+(\.[0-9]*[1-9])?", value["amount"]), where
        assert value["approx"] == approx_from_context(text, start, end), f"approx: {where}"
    elif etype == "PERCENT":
        if span.startswith("百分之"):
            number = parse_number(span[3:])
        else:
            assert span[-1] in "%％", where
            number = parse_number(span[:-1])
        fraction = float(number / 100)
        assert abs(fraction - value["fraction"]) < 1e-12, f"fraction {value['fraction']} vs {fraction}: {where}"
        assert value["approx"] == approx_from_context(text, start, end), f"approx: {where}"
    elif etype == "TIME":
        if value is not None:
            years = span_years(span)
            assert years, f"absolute TIME without a year: {where}"
            single = single_date(span)
            if single is not None:
                assert value["start"].startswith(single), f"{value['start']} vs {single}: {where}"
            assert value["start"][:4] == years[0], where
            assert value["end"][:4] == years[-1], where
            assert value["start"] <= value["end"], where
        else:
            assert not span_years(span), f"TIME naming a year needs a value: {where}"
    elif etype == "TITLE":
        assert value is None, where
    else:
        raise AssertionError(f"unknown type {etype}: {where}")


def nth_find(text: str, span: str, occ: int) -> int:
    pos = -1
    for _ in range(occ + 1):
        pos = text.find(span, pos + 1)
        assert pos >= 0, f"span {span!r} (occurrence {occ}) not found in {text!r}"
    return pos


def build() -> list[dict]:
    records = []
    seen_texts = set()
    for text, gold in SENTENCES:
        assert text not in seen_texts, f"duplicate sentence {text!r}"
        seen_texts.add(text)
        assert 15 <= len(text) <= 80, f"length {len(text)}: {text!r}"
        entities = []
        for etype, span, occ, value in gold:
            start = nth_find(text, span, occ)
            end = start + len(span)
            assert text[start:end] == span
            check_value(text, etype, span, start, end, value)
            if etype == "PERCENT":
                value = {"fraction": round(float(value["fraction"]), 10), "approx": value["approx"]}
            entities.append({"type": etype, "start": start, "end": end, "span": span, "value": value})
        entities.sort(key=lambda e: (e["start"], e["end"]))
        for a, b in itertools.pairwise(entities):
            assert a["end"] <= b["start"], f"overlap {a['span']!r} / {b['span']!r} in {text!r}"
        records.append({"text": text, "entities": entities})
    return records


def main() -> None:
    records = build()
    with OUT.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    counts: dict[str, int] = {}
    for rec in records:
        for ent in rec["entities"]:
            counts[ent["type"]] = counts.get(ent["type"], 0) + 1
    print(f"wrote {len(records)} sentences to {OUT}: {counts}")


if __name__ == "__main__":
    main()
