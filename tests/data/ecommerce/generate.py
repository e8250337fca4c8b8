#!/usr/bin/env python3
"""Deterministic generator for a small Chinese e-commerce NER dataset.

Writes train.jsonl (300 sentences) and heldout.jsonl (100 sentences) next to
this file.  Labels: BRAND and PRODUCT only.  Brand and product pools are split
into disjoint train-only / heldout-only subsets, so no heldout entity string
occurs anywhere in train.jsonl (checked by assertions before writing).

Standard library only.  Run:  python3 generate.py
"""

import json
import os
import random
import re

SEED = 20240607
N_TRAIN = 300
N_HELDOUT = 100
HELDOUT_FRACTION = 0.3
MIN_LEN, MAX_LEN = 10, 80

# ---------------------------------------------------------------------------
# Name pools.  Categories: digital, appliance, apparel, beauty, food, baby, home
# ---------------------------------------------------------------------------

BRANDS = {
    "digital": [
        "华为", "小米", "苹果", "OPPO", "vivo", "荣耀", "一加", "魅族", "联想",
        "realme", "三星", "索尼", "大疆", "漫步者", "倍思", "绿联", "努比亚",
        "朗途", "星澜", "酷域", "幻羽", "启明星", "声阔",
    ],
    "appliance": [
        "海尔", "格力", "九阳", "苏泊尔", "戴森", "科沃斯", "追觅", "小熊电器",
        "方太", "奥克斯", "海信", "TCL", "长虹", "飞利浦", "松下", "志高",
        "德尔玛", "澜庭", "暖居", "洁源", "凯朗", "森沐",
    ],
    "apparel": [
        "李宁", "安踏", "特步", "361度", "鸿星尔克", "匹克", "耐克", "阿迪达斯",
        "波司登", "优衣库", "太平鸟", "森马", "骆驼", "探路者", "迪桑特",
        "始祖鸟", "斐乐", "行野", "风屿", "北纬", "赤霄",
    ],
    "beauty": [
        "完美日记", "花西子", "珀莱雅", "百雀羚", "自然堂", "薇诺娜", "欧莱雅",
        "兰蔻", "雅诗兰黛", "资生堂", "谷雨", "韩束", "丸美", "相宜本草",
        "橘朵", "毛戈平", "玉肌坊", "初颜", "雪檀", "芷若", "青黛集",
    ],
    "food": [
        "三只松鼠", "良品铺子", "百草味", "来伊份", "蒙牛", "伊利", "元气森林",
        "农夫山泉", "瑞幸", "三顿半", "康师傅", "旺旺", "卫龙", "喜茶", "奈雪",
        "洽洽", "白象", "麦香村", "果然鲜", "禾谷田", "山野集", "鲜之语",
    ],
    "baby": [
        "飞鹤", "君乐宝", "贝因美", "合生元", "爱他美", "美赞臣", "惠氏",
        "帮宝适", "花王", "好孩子", "巴拉巴拉", "全棉时代", "暖贝", "小禾苗",
        "嘟嘟熊", "安喃",
    ],
    "home": [
        "宜家", "无印良品", "网易严选", "水星家纺", "罗莱", "富安娜", "慕思",
        "喜临门", "顾家家居", "林氏木业", "源氏木语", "梦洁", "栖木", "眠岛",
        "青禾居", "素野", "棉语",
    ],
}

# (product name, owning brand or None, generic category word that may follow
#  the name in text, unlabelled; "" if the name already contains it)
PRODUCTS = {
    "digital": [
        ("Mate 60 Pro", "华为", "手机"), ("Pura 70 Ultra", "华为", "手机"),
        ("FreeBuds Pro 3", "华为", "耳机"), ("MatePad Air", "华为", "平板"),
        ("iPhone 15 Pro Max", "苹果", "手机"), ("AirPods Pro 2", "苹果", "耳机"),
        ("MacBook Air", "苹果", "笔记本电脑"), ("Find X7", "OPPO", "手机"),
        ("Reno 11", "OPPO", "手机"), ("X100 Pro", "vivo", "手机"),
        ("Magic6 Pro", "荣耀", "手机"), ("ThinkPad X1 Carbon", "联想", "笔记本电脑"),
        ("拯救者Y9000P", "联想", "游戏本"), ("Galaxy S24", "三星", "手机"),
        ("WH-1000XM5", "索尼", "耳机"), ("Mini 4 Pro", "大疆", "无人机"),
        ("Osmo Pocket 3", "大疆", "云台相机"), ("Ace 3", "一加", "手机"),
        ("Lucky 08", "魅族", "手机"), ("GT Neo6", "realme", "手机"),
        ("Z60 Ultra", "努比亚", "手机"), ("Buds 4 Pro", "小米", "耳机"),
        ("Watch S3", "小米", "智能手表"),
        ("星河X9", None, "手机"), ("灵犀Pad 2", None, "平板"),
        ("疾风Buds", None, "耳机"), ("极夜Watch 4", None, "智能手表"),
        ("青竹Book 14", None, "笔记本电脑"), ("闪电宝Q10", None, "充电宝"),
        ("云雀Air", None, "耳机"), ("墨羽S3", None, "手机"),
        ("朔风GT", None, "智能手表"), ("光影N5", None, "手机"),
        ("听澜Pods", None, "耳机"), ("流萤Band 6", None, "手环"),
        ("凌霄Book Air", None, "笔记本电脑"), ("飞梭T20", None, "充电宝"),
        ("晨曦Tab 12", None, "平板"), ("逐光X2", None, "手机"),
        ("鲸歌H1", None, "耳机"), ("锋芒K50", None, "手机"),
    ],
    "appliance": [
        ("V15 Detect", "戴森", "吸尘器"), ("Supersonic HD08", "戴森", "吹风机"),
        ("地宝X2", "科沃斯", "扫地机器人"), ("X30 Pro", "追觅", "扫地机器人"),
        ("精华洗2.0", "海尔", "洗衣机"), ("云佳", "格力", "空调"),
        ("太空破壁机Y1", "九阳", ""), ("球釜电饭煲", "苏泊尔", ""),
        ("ULED X", "海信", "电视"), ("Q10K", "TCL", "电视"),
        ("蜂巢剃须刀S9", "飞利浦", ""), ("纳诺怡吹风机EH-NA9", "松下", ""),
        ("萌宠养生壶", "小熊电器", ""), ("智净油烟机EMC5", "方太", ""),
        ("极光洗衣机X3", None, ""), ("空气净化器KJ500", None, ""),
        ("云感空调N8", None, ""), ("净界冰箱BCD-520", None, ""),
        ("雪域冰箱F9", None, ""), ("暖阳取暖器H6", None, ""),
        ("微风电扇DF-12", None, ""), ("磐石破壁机P9", None, ""),
        ("清泉净水器RO-800", None, ""), ("涡轮吹风机T6", None, ""),
        ("蒸汽挂烫机G3", None, ""), ("银河油烟机Y7", None, ""),
        ("悦享洗碗机W8", None, ""), ("慕雪冰箱Max", None, ""),
        ("静音空调K35", None, ""), ("星云扫地机S8", None, ""),
        ("月白电饭煲M2", None, ""), ("灵动加湿器H3", None, ""),
        ("晴空除湿机D20", None, ""), ("暖冬电暖气E5", None, ""),
        ("凌风空气炸锅A6", None, ""), ("北极星冰柜C300", None, ""),
    ],
    "apparel": [
        ("超轻21", "李宁", "跑鞋"), ("韦德之道11", "李宁", "篮球鞋"),
        ("飞电4", "李宁", "竞速跑鞋"), ("KT9", "安踏", "篮球鞋"),
        ("马赫4", "安踏", "跑鞋"), ("160X 6.0", "特步", "跑鞋"),
        ("Air Max 90", "耐克", "运动鞋"), ("Ultraboost 23", "阿迪达斯", "跑鞋"),
        ("登峰2.0", "波司登", "羽绒服"), ("Alpha SV", "始祖鸟", "冲锋衣"),
        ("态极3.0", "匹克", "跑鞋"), ("奇弹6.0", "鸿星尔克", "跑鞋"),
        ("AIRism", "优衣库", "T恤"),
        ("风行者夹克", None, ""), ("云朵跑鞋", None, ""), ("逐日T恤", None, ""),
        ("极寒羽绒服Z1", None, ""), ("轻羽卫衣", None, ""),
        ("疾影2代", None, "跑鞋"), ("山脊冲锋衣", None, ""),
        ("踏浪凉鞋", None, ""), ("裸感瑜伽裤", None, ""),
        ("追风者2号", None, "跑鞋"), ("青峰登山鞋", None, ""),
        ("赤焰篮球鞋R1", None, ""), ("暮雪羊绒大衣", None, ""),
        ("海盐防晒衣", None, ""), ("光速跑鞋GS3", None, ""),
        ("林间徒步鞋", None, ""), ("北境冲锋衣", None, ""),
        ("雾蓝牛仔裤", None, ""), ("悦跑短裤", None, ""),
        ("星野双肩包", None, ""),
    ],
    "beauty": [
        ("红妍肌活精华", "资生堂", ""), ("小棕瓶", "雅诗兰黛", "精华液"),
        ("小黑瓶", "兰蔻", "精华液"), ("双抗精华", "珀莱雅", ""),
        ("红宝石面霜", "珀莱雅", ""), ("雕花口红", "花西子", ""),
        ("空气蜜粉", "花西子", ""), ("小细跟口红", "完美日记", ""),
        ("舒敏保湿特护霜", "薇诺娜", ""), ("紫熨斗眼霜", "欧莱雅", ""),
        ("帧颜霜", "百雀羚", ""), ("冰肌水", "自然堂", ""),
        ("弹弹眼霜", "丸美", ""), ("小方盒眼影", "橘朵", ""),
        ("光影塑颜高光", "毛戈平", ""),
        ("雪肌凝露", None, ""), ("琉璃唇釉", None, ""),
        ("晨光防晒乳SPF50", None, ""), ("玉兰面霜", None, ""),
        ("丝绒雾面口红", None, ""), ("清透水乳", None, ""),
        ("玻色因修护面霜", None, ""), ("水光气垫C1", None, ""),
        ("樱花洗面奶", None, ""), ("蜜桃腮红", None, ""),
        ("极润精华油", None, ""), ("山茶花卸妆油", None, ""),
        ("鎏金眼霜", None, ""), ("羽感粉底液", None, ""),
        ("桃花散粉", None, ""), ("星钻睫毛膏", None, ""),
        ("海藻面膜", None, ""), ("柔雾唇泥", None, ""),
    ],
    "food": [
        ("生椰拿铁", "瑞幸", ""), ("酱香拿铁", "瑞幸", ""),
        ("特仑苏", "蒙牛", "纯牛奶"), ("纯甄", "蒙牛", "酸奶"),
        ("安慕希", "伊利", "酸奶"), ("金典", "伊利", "有机奶"),
        ("白桃味气泡水", "元气森林", ""), ("东方树叶", "农夫山泉", "茶饮料"),
        ("红烧牛肉面", "康师傅", ""), ("魔芋爽", "卫龙", ""),
        ("仙贝", "旺旺", ""), ("多肉葡萄", "喜茶", ""),
        ("霸气橙子", "奈雪", ""), ("藤椒牛肉面", "白象", ""),
        ("每日坚果", "三只松鼠", ""), ("超即溶咖啡", "三顿半", ""),
        ("焦糖瓜子", "洽洽", ""),
        ("燕麦拿铁", None, ""), ("松子仁礼盒", None, ""),
        ("芝士流心月饼", None, ""), ("黑糖珍珠奶茶", None, ""),
        ("金麦脆脆卷", None, ""), ("琥珀核桃仁", None, ""),
        ("山楂小丸子", None, ""), ("椰香薄脆", None, ""),
        ("海苔肉松卷", None, ""), ("冻干草莓脆", None, ""),
        ("云朵棉花糖", None, ""), ("蜜语柚子茶", None, ""),
        ("晨露豆浆粉", None, ""), ("火山岩烤肠", None, ""),
        ("雪顶咖啡冻", None, ""), ("醇香黑芝麻糊", None, ""),
    ],
    "baby": [
        ("星飞帆", "飞鹤", "奶粉"), ("至臻", "君乐宝", "奶粉"),
        ("蓝臻", "美赞臣", "奶粉"), ("启赋", "惠氏", "奶粉"),
        ("一级帮", "帮宝适", "纸尿裤"), ("妙而舒", "花王", "纸尿裤"),
        ("口袋车Pockit", "好孩子", "婴儿推车"), ("爱加", "贝因美", "奶粉"),
        ("派星", "合生元", "奶粉"), ("卓萃", "爱他美", "奶粉"),
        ("纯棉柔巾", "全棉时代", ""),
        ("云柔拉拉裤", None, ""), ("萌宝米粉", None, ""),
        ("小蜗牛推车S2", None, ""), ("暖暖睡袋", None, ""),
        ("星星磨牙棒", None, ""), ("安睡纸尿裤Q3", None, ""),
        ("软糯宝宝面", None, ""), ("益生菌滴剂D3", None, ""),
        ("呼呼安抚奶嘴", None, ""), ("彩虹爬行垫", None, ""),
        ("云梯安全座椅i5", None, ""), ("柔云婴儿湿巾", None, ""),
        ("小鹿学饮杯", None, ""),
    ],
    "home": [
        ("KIVIK", "宜家", "沙发"), ("MALM", "宜家", "床架"),
        ("T10护脊床垫", "慕思", ""), ("冰丝凉席", "水星家纺", ""),
        ("天鹅绒被", "罗莱", ""), ("圣之花四件套", "富安娜", ""),
        ("白骑士床垫", "喜临门", ""), ("深睡枕", "网易严选", ""),
        ("懒人沙发", "无印良品", ""), ("真皮功能沙发", "顾家家居", ""),
        ("云朵枕", None, ""), ("记忆棉床垫M3", None, ""),
        ("软云沙发", None, ""), ("天丝四件套Q7", None, ""),
        ("森眠床垫", None, ""), ("折叠收纳箱L60", None, ""),
        ("月光落地灯", None, ""), ("悬浮床头柜", None, ""),
        ("蜂巢乳胶枕", None, ""), ("晨雾香薰机", None, ""),
        ("北欧实木餐桌T1", None, ""), ("星空投影灯", None, ""),
        ("熊猫抱枕", None, ""), ("竹语凉席", None, ""),
        ("暖绒毛毯", None, ""), ("极简衣帽架", None, ""),
    ],
}

# Generic (unlabelled) category words, price ranges.
CATEGORY_WORDS = {
    "digital": ["手机", "耳机", "平板", "智能手表", "笔记本电脑"],
    "appliance": ["洗衣机", "冰箱", "空调", "空气净化器", "扫地机器人", "吹风机"],
    "apparel": ["跑鞋", "运动鞋", "冲锋衣", "羽绒服", "卫衣"],
    "beauty": ["面霜", "口红", "精华液", "粉底液", "防晒霜"],
    "food": ["零食", "坚果", "咖啡", "牛奶", "饮料"],
    "baby": ["奶粉", "纸尿裤", "婴儿推车", "辅食"],
    "home": ["枕头", "床垫", "沙发", "四件套", "收纳箱"],
}
PRICE_RANGE = {
    "digital": (399, 8999), "appliance": (199, 5999), "apparel": (89, 1999),
    "beauty": (59, 1299), "food": (9, 199), "baby": (49, 599), "home": (39, 4999),
}
PERSONS = ["王女士", "张先生", "李阿姨", "小陈", "刘洋", "赵敏", "陈静",
           "孙悦", "我妈", "小林", "黄经理", "周姐"]
CITIES = ["北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "南京",
          "西安", "重庆", "长沙", "苏州", "厦门", "青岛"]
DEALS = ["8.5折", "满300减50", "第二件半价", "限时7折", "买一送一", "满199减30"]

# ---------------------------------------------------------------------------
# Templates.  Slots: {B},{B2},{B3} brand; {P},{P2},{P3} product;
# {S},{S2},{S3} generic word of the matching product (unlabelled);
# {C} category word; {PRICE} {PER} {CITY} {N} {DEAL}.
# B_i is bound to the owner of P_i when the template has P_i and P_i has one.
# Templates marked same_brand=True draw P2/P3 from B's own (or unowned) items.
# ---------------------------------------------------------------------------

ZERO_TEMPLATES = [
    "这件{C}质量一般，物流倒是挺快的，两天就到了。",
    "请问{CITY}地区可以当天发货吗？我急着用。",
    "双十一全场满{N}00减{N}0，{C}类目还能叠加优惠券，太划算了！",
    "收到货了，包装完好，{PER}说颜色比图片上还好看。",
    "亲，您好，订单已于今天下午从{CITY}仓发出，请注意查收。",
    "给{PER}买的生日礼物，价格{PRICE}，性价比还可以。",
    "客服回复很及时，退款两小时就到账了，好评。",
    "这款{C}到底值不值{PRICE}？蹲一个真实测评。",
    "618预售从今晚八点开始，定金翻倍，尾款需在6月1日至3日之间支付，逾期定金不退，"
    "请各位亲合理安排时间。",
]

TEMPLATES = [
    ("【官方旗舰店】{B}{P}{S} 正品保障 到手价{PRICE} 顺丰包邮", False),
    ("{P}用了半个月，说实话比我想象中好用，推荐！", False),
    ("刚在{CITY}的线下门店体验了{B}{P}，做工确实不错。", False),
    ("{B}这次的{C}定价{PRICE}，你们觉得值吗？", False),
    ("买了{B}的{P}，{PER}说性价比很高。", False),
    ("亲，{P}目前有现货，下单后48小时内发货哦。", False),
    ("{B}今日在{CITY}发布新品{P}，首发价{PRICE}。", False),
    ("对比了{B}{P}和{B2}{P2}，最后还是选了前者。", False),
    ("{P}和{P2}有什么区别？哪个更适合新手？", False),
    ("618大促：{B}全场{DEAL}，{P}低至{PRICE}！", True),
    ("第二次回购{P}了，{B}家的东西一直很稳定。", False),
    ("客服您好，我上周买的{P}有点问题，能换货吗？", False),
    ("{B}、{B2}、{B3}三家的{C}我都用过，各有优缺点。", False),
    ("听朋友推荐入手了{B}{P}{S}，颜值在线，就是价格有点贵。", False),
    ("{PER}在{CITY}的{B}专卖店排队两个小时才买到{P}。", False),
    ("这款{C}不是{B}官方出品的，请大家注意辨别。", False),
    ("{P}开箱：包装很简洁，配件齐全，第一印象不错。", False),
    ("据悉，{B}将于下月推出{P}，定位中高端市场。", False),
    ("{B}{P}与{B2}{P2}正面对比，谁才是同价位性价比之王？", False),
    ("差评！{P}收到就坏了，联系{B}售后也没人理。", False),
    ("主播推荐的{P}真的绝了，已经安利给闺蜜{PER}。", False),
    ("【限时秒杀】{B}{P} {PRICE} 仅剩{N}件", False),
    ("请问{P}支持七天无理由退货吗？", False),
    ("{B}回应质量问题：将对{P}全面召回检测。", False),
    ("今年{CITY}消费者最爱的{C}品牌是{B}和{B2}。", False),
    ("{P}比{P2}便宜了{N}百多块，功能却差不多。", False),
    ("老公送的{B}{P}{S}，开心到飞起～", False),
    ("{B}官方旗舰店上新：{P}、{P2}、{P3}同步开售。", True),
    ("这个价格买{P}不亏，{PRICE}还送赠品。", False),
    ("用过{B}之后再也不想换别的牌子了。", False),
    ("{B}{P}{S}测评来了！", False),
    ("打算给爸妈换个{C}，{B}和{B2}哪家售后好？", False),
    ("物流很快，{P}已收到，{PER}试了一下非常满意。", False),
    ("{B}联合{B2}推出联名款{P}，限量{N}000份。", False),
    ("您好，{P}现在下单可享{DEAL}，另有赠品相送。", False),
    ("{CITY}一家{B}门店被曝出售翻新商品，涉及{P}等型号。", False),
    ("已经第三次买{B}了，这次选的是{P}，期待！", False),
    ("【新品】{B}{P}{S}｜{DEAL}｜全国联保", False),
    ("{P}跟{B2}的{P2}比起来，我更喜欢前者的设计。", False),
    ("有没有人用过{P}？想知道真实体验，别给我推{B2}。", False),
    ("年货节：{B}{DEAL}，{P}和{P2}组合装只要{PRICE}。", True),
    ("{B}旗下{P}上市三个月销量突破{N}0万件。", False),
    ("实体店看中了{P}，回家网上一搜，便宜了{N}0块。", False),
    ("{PER}：我一直用{B}{P}，从来没出过问题。", False),
    ("快递小哥说{CITY}这边{B}的单子最近特别多。", False),
    ("求推荐{PRICE}以内的{C}，不要{B}的，谢谢。", False),
    ("{B}{P}、{B2}{P2}、{B3}{P3}横评，看完再下单！", False),
    ("Q：{P}{S}怎么激活保修？A：扫描包装盒上的二维码即可。", False),
    ("{B}门店店长{PER}表示，{P}在{CITY}已经断货一周。", False),
    ("买{P}送{P2}，仅限今天，手慢无！", True),
    # longer, multi-clause sentences
    ("上个月在{CITY}出差时顺手买了{B}{P}{S}，体验了三个多星期，整体感受是品质在线、"
     "细节到位，唯一的缺点就是价格偏高，活动价{PRICE}还能接受。", False),
    ("【新品速递】{B}今天正式发布了{P}，官方称其在用料和设计上全面升级，首批现货将于"
     "本周五在天猫、京东同步开售，预售价{PRICE}。", False),
    ("客服：亲，您咨询的{P}目前仓库显示有货，今天16点前付款当天就能发出，{CITY}"
     "地区一般两到三天送达，请问还有其他需要帮您的吗？", False),
    ("说实话一开始对{B}没什么好感，但是朋友{PER}强烈推荐{P}，抱着试试看的心态下单了，"
     "结果真香，已经准备回购第二件了。", False),
    ("{B}{P}和{B2}{P2}我都买过，前者胜在设计和做工，后者胜在价格和售后，"
     "预算充足选前者，追求性价比就选后者吧。", False),
    ("年终盘点：今年卖得最好的三款单品分别是{B}的{P}、{B2}的{P2}以及{B3}的{P3}，"
     "你入手了几款？", False),
    ("给家里老人买的{P}，老人用了一周说很好用，下次还会考虑{B}家的其他产品，"
     "客服全程也很耐心，五星好评。", False),
    ("差评预警：{B}{P}{S}到手第三天就出现了故障，申请售后被客服踢皮球，"
     "前后折腾了半个月才退款，大家慎重购买！", False),
    ("这次{DEAL}活动力度真的大，{P}叠加店铺券和平台补贴后到手只要{PRICE}，"
     "果断给全家每人都安排了一份。", False),
]

SLOT_RE = re.compile(r"\{([A-Z]+[0-9]?)\}")
ENTITY_SLOTS = {"B": ("BRAND", 1), "B2": ("BRAND", 2), "B3": ("BRAND", 3),
                "P": ("PRODUCT", 1), "P2": ("PRODUCT", 2), "P3": ("PRODUCT", 3)}
SUFFIX_SLOTS = {"S": 1, "S2": 2, "S3": 3}


def split_pools(rng):
    """Split brands and products into disjoint train / heldout pools."""
    pools = {"train": {}, "heldout": {}}
    for cat in sorted(BRANDS):
        brands = list(BRANDS[cat])
        rng.shuffle(brands)
        n_held = max(4, round(HELDOUT_FRACTION * len(brands)))
        held_b, train_b = brands[:n_held], brands[n_held:]
        owned_held = [p for p in PRODUCTS[cat] if p[1] in held_b]
        owned_train = [p for p in PRODUCTS[cat] if p[1] in train_b]
        unowned = [p for p in PRODUCTS[cat] if p[1] is None]
        rng.shuffle(unowned)
        n_held_p = max(4, round(HELDOUT_FRACTION * len(unowned)))
        pools["heldout"][cat] = (held_b, owned_held + unowned[:n_held_p])
        pools["train"][cat] = (train_b, owned_train + unowned[n_held_p:])
    return pools


def fill(template, same_brand, cat, pool, rng):
    brands, products = pool
    slots = SLOT_RE.findall(template)
    prods = {}
    for name in slots:
        if name in ENTITY_SLOTS and ENTITY_SLOTS[name][0] == "PRODUCT":
            idx = ENTITY_SLOTS[name][1]
            cands = [p for p in products if p not in prods.values()]
            if same_brand and idx > 1 and prods.get(1) and prods[1][1]:
                owner = prods[1][1]
                cands = [p for p in cands if p[1] in (owner, None)]
            prods[idx] = rng.choice(cands)
    brand_of = {}
    used = set()
    for name in slots:
        if name in ENTITY_SLOTS and ENTITY_SLOTS[name][0] == "BRAND":
            idx = ENTITY_SLOTS[name][1]
            owner = prods[idx][1] if idx in prods else None
            if owner is None and same_brand and idx == 1 and prods:
                owner = next((p[1] for p in prods.values() if p[1]), None)
            if owner is None:
                owner = rng.choice([b for b in brands if b not in used])
            brand_of[idx] = owner
            used.add(owner)

    text, ents = "", []
    pos = 0
    for m in SLOT_RE.finditer(template):
        text += template[pos:m.start()]
        pos = m.end()
        name = m.group(1)
        if name in ENTITY_SLOTS:
            typ, idx = ENTITY_SLOTS[name]
            value = brand_of[idx] if typ == "BRAND" else prods[idx][0]
            ents.append({"start": len(text), "end": len(text) + len(value),
                         "type": typ, "text": value})
            text += value
        elif name in SUFFIX_SLOTS:
            text += prods[SUFFIX_SLOTS[name]][2]
        elif name == "C":
            text += rng.choice(CATEGORY_WORDS[cat])
        elif name == "PRICE":
            lo, hi = PRICE_RANGE[cat]
            v = rng.randint(lo, hi)
            v = v - v % 10 + 9 if v > 100 else v
            text += rng.choice(["¥{}", "¥{}", "￥{}", "{}元"]).format(v)
        elif name == "PER":
            text += rng.choice(PERSONS)
        elif name == "CITY":
            text += rng.choice(CITIES)
        elif name == "N":
            text += str(rng.randint(2, 9))
        elif name == "DEAL":
            text += rng.choice(DEALS)
        else:
            raise ValueError("unknown slot " + name)
    text += template[pos:]
    return {"text": text, "entities": ents}


def all_names():
    names = []
    for cat in BRANDS:
        names += BRANDS[cat]
        names += [p[0] for p in PRODUCTS[cat]]
    return names


def check_pools(pools):
    names = all_names()
    assert len(names) == len(set(names)), "duplicate name in pools"
    n_brands = sum(len(v) for v in BRANDS.values())
    n_products = sum(len(v) for v in PRODUCTS.values())
    assert n_brands >= 120 and n_products >= 200, (n_brands, n_products)
    for cat in PRODUCTS:
        for _, owner, _ in PRODUCTS[cat]:
            assert owner is None or owner in BRANDS[cat], owner
    # No name is a substring of another name, of a template or of a filler.
    fixed = "\n".join(ZERO_TEMPLATES + [t for t, _ in TEMPLATES] + PERSONS +
                      CITIES + DEALS + [w for ws in CATEGORY_WORDS.values() for w in ws] +
                      [p[2] for ps in PRODUCTS.values() for p in ps])
    for a in names:
        assert a not in fixed, "name occurs in fixed text: " + a
        for b in names:
            assert a == b or a not in b, f"name {a!r} is inside name {b!r}"
    # Train / heldout pools are disjoint.
    tr = {n for b, p in pools["train"].values() for n in b + [x[0] for x in p]}
    he = {n for b, p in pools["heldout"].values() for n in b + [x[0] for x in p]}
    assert not (tr & he)
    for cat in BRANDS:
        for split in pools:
            b, p = pools[split][cat]
            assert len(b) >= 4 and len(p) >= 4, (split, cat)


def check_example(ex):
    text, ents = ex["text"], ex["entities"]
    assert MIN_LEN <= len(text) <= MAX_LEN, text
    assert "{" not in text and "}" not in text, "unfilled slot: " + text
    prev_end = 0
    for e in ents:
        assert set(e) == {"start", "end", "type", "text"}
        assert e["type"] in ("BRAND", "PRODUCT")
        assert 0 <= e["start"] < e["end"] <= len(text)
        assert text[e["start"]:e["end"]] == e["text"], (text, e)
        assert e["start"] >= prev_end, "overlap or unsorted: " + text
        prev_end = e["end"]


def check_no_unlabelled_mentions(ex, names):
    """Every occurrence of any pool name must lie inside a labelled span."""
    text = ex["text"]
    for n in names:
        i = text.find(n)
        while i != -1:
            assert any(e["start"] <= i and i + len(n) <= e["end"]
                       for e in ex["entities"]), (n, text)
            i = text.find(n, i + 1)


def generate(n, split, pools, rng, seen):
    """seen: sentence texts already used (shared across splits, no duplicates)."""
    out = []
    cats = sorted(BRANDS)
    i = 0
    while len(out) < n:
        cat = rng.choice(cats)
        if len(out) % 10 == 0:
            tmpl, same = rng.choice(ZERO_TEMPLATES), False
        else:
            tmpl, same = rng.choice(TEMPLATES)
        ex = fill(tmpl, same, cat, pools[split][cat], rng)
        i += 1
        assert i < 100 * n, "too many rejections"
        if not (MIN_LEN <= len(ex["text"]) <= MAX_LEN) or ex["text"] in seen:
            continue
        seen.add(ex["text"])
        out.append(ex)
    return out


def main():
    rng = random.Random(SEED)
    pools = split_pools(rng)
    check_pools(pools)
    seen = set()
    train = generate(N_TRAIN, "train", pools, rng, seen)
    heldout = generate(N_HELDOUT, "heldout", pools, rng, seen)

    names = all_names()
    for ex in train + heldout:
        check_example(ex)
        check_no_unlabelled_mentions(ex, names)
    assert len(train) == N_TRAIN and len(heldout) == N_HELDOUT
    assert not {e["text"] for e in train} & {e["text"] for e in heldout}

    # Disjointness: no heldout entity string occurs (even as a substring)
    # anywhere in train.jsonl, and vice versa.
    held_ents = {e["text"] for ex in heldout for e in ex["entities"]}
    train_ents = {e["text"] for ex in train for e in ex["entities"]}
    train_blob = "\n".join(ex["text"] for ex in train)
    held_blob = "\n".join(ex["text"] for ex in heldout)
    for t in held_ents:
        assert t not in train_blob, "heldout entity leaks into train: " + t
    for t in train_ents:
        assert t not in held_blob, "train entity leaks into heldout: " + t

    here = os.path.dirname(os.path.abspath(__file__))
    for fname, data in (("train.jsonl", train), ("heldout.jsonl", heldout)):
        with open(os.path.join(here, fname), "w", encoding="utf-8", newline="\n") as f:
            for ex in data:
                f.write(json.dumps(ex, ensure_ascii=False) + "\n")

    for fname, data in (("train.jsonl", train), ("heldout.jsonl", heldout)):
        counts = {"BRAND": 0, "PRODUCT": 0}
        hist = {}
        for ex in data:
            for e in ex["entities"]:
                counts[e["type"]] += 1
            k = min(len(ex["entities"]), 3)
            hist[k] = hist.get(k, 0) + 1
        distinct = {t: len({e["text"] for ex in data for e in ex["entities"]
                            if e["type"] == t}) for t in counts}
        print("%s: %d sentences, BRAND %d (distinct %d), PRODUCT %d (distinct %d), "  # noqa: UP031
              "entities/sentence 0:%d 1:%d 2:%d 3+:%d" % (
                  fname, len(data), counts["BRAND"], distinct["BRAND"],
                  counts["PRODUCT"], distinct["PRODUCT"],
                  hist.get(0, 0), hist.get(1, 0), hist.get(2, 0), hist.get(3, 0)))
    print("pools: %d brands, %d products; templates: %d (+%d zero-entity)" % (  # noqa: UP031
        sum(len(v) for v in BRANDS.values()), sum(len(v) for v in PRODUCTS.values()),
        len(TEMPLATES), len(ZERO_TEMPLATES)))
    print("disjointness check passed")


if __name__ == "__main__":
    main()
