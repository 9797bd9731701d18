"""Chinese personal and place names, drawn from small pools (deterministic for a Generator)."""
from __future__ import annotations

import numpy as np

SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任"
    "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN_M = list("伟强军勇杰涛明超刚平辉建国华志斌文德福寿春生林海峰成兵清松")
GIVEN_F = list("芳娟敏静丽艳霞梅英兰凤秀玉珍桂娥琴红燕云莲翠萍淑慧花")

PLACE_A = list("石黄白龙凤梅花桃李杨柳金银铜水田山河江湖塘泉溪岭坪竹枫茶桐松柏荷青红太")
PLACE_B = list("口头岗坪江塘湾冲桥洞坊湖岭寨铺市圩源田山洲")
VILLAGE_STEMS = [
    "团结", "石桥", "双江", "红星", "枫木", "新民", "龙泉", "大义", "和平", "东门", "凤凰", "新塘", "长坪",
    "竹山", "杉木", "桐木", "柏树", "荷花", "青山", "白果", "清水", "马鞍", "金盆", "古城", "高峰", "上坪",
    "下湾", "新田", "黄泥", "茶园", "岩口", "大塘", "小江", "沙洲", "东风", "向阳", "胜利", "光明", "五一",
]


def person_names(rng: np.random.Generator, male: np.ndarray) -> np.ndarray:
    """A surname and one or two given characters, picked from pools by gender."""
    n = len(male)
    sur = np.array(SURNAMES, dtype=object)[rng.integers(0, len(SURNAMES), n)]
    gm = np.array(GIVEN_M, dtype=object)
    gf = np.array(GIVEN_F, dtype=object)
    g1 = np.where(male, gm[rng.integers(0, len(gm), n)], gf[rng.integers(0, len(gf), n)])
    g2 = np.where(male, gm[rng.integers(0, len(gm), n)], gf[rng.integers(0, len(gf), n)])
    two = rng.random(n) < 0.6
    return sur + g1 + np.where(two, g2, "")


def place_stem(rng: np.random.Generator) -> str:
    return str(PLACE_A[rng.integers(len(PLACE_A))]) + str(PLACE_B[rng.integers(len(PLACE_B))])


def village_stem(rng: np.random.Generator) -> str:
    return VILLAGE_STEMS[rng.integers(len(VILLAGE_STEMS))]
