//! Category-suggestion accuracy on a generated, labelled set of requests for
//! the demo tenant's 42 leaf categories: top-1 and top-3 on a held-out 20 %
//! split, for keywords alone and for the model trained on growing shares of
//! the training split; and the time per suggestion.
//!
//! Run: `cargo bench -p jiesu-intake --bench suggest_accuracy`
//!
//! Each text is put together from a place, one of several phrasings of the
//! category's problem (with interchangeable details), a time and what the
//! caller wants, so the same words recur across categories (噪音 in four of
//! them, 收费 in three) as they do in real 12345 traffic.

use std::time::Instant;

use jiesu_intake::domain::suggest::{Candidate, Model};
use serde::Deserialize;

#[derive(Deserialize)]
struct Demo {
    categories: Vec<Cat>,
}

#[derive(Deserialize)]
struct Cat {
    code: String,
    name: String,
    #[serde(default)]
    parent: String,
    #[serde(default)]
    keywords: String,
}

/// Phrasings per leaf; `{}` takes one of the leaf's details.
const PHRASES: &[(&str, &[&str], &[&str])] = &[
    (
        "CX0101",
        &[
            "物业{}，打电话也没人管",
            "小区物业{}，交了钱不干活",
            "物业公司{}，业主意见很大",
        ],
        &[
            "保洁不打扫楼道",
            "保安晚上不在岗",
            "绿化没人修剪",
            "电梯坏了半个月不修",
        ],
    ),
    (
        "CX0102",
        &[
            "物业{}，不合理",
            "物业公司{}，没有公示",
            "{}，物业说不交就停门禁",
        ],
        &[
            "突然上调物业费",
            "车位管理费乱涨",
            "要求一次交三年费用",
            "收取装修押金不退",
        ],
    ),
    (
        "CX0103",
        &[
            "申请使用{}，一直批不下来",
            "{}怎么申请使用",
            "小区{}被挪用了",
        ],
        &["公共维修资金", "房屋维修基金", "大修基金维修外墙"],
    ),
    (
        "CX0104",
        &["{}，居委会不管", "小区{}迟迟不成立", "{}过程不公开"],
        &["业主委员会选举", "业委会换届", "业主大会表决"],
    ),
    (
        "CX0201",
        &[
            "老楼想{}，不知道去哪里办",
            "咨询{}需要什么手续",
            "{}的补贴什么时候发",
        ],
        &["加装电梯审批", "加梯备案", "旧楼加装电梯"],
    ),
    (
        "CX0202",
        &["{}，一楼住户坚决反对", "单元里{}谈不拢", "{}，低层说挡光"],
        &["加装电梯意见不统一", "装电梯分摊费用", "电梯井位置"],
    ),
    (
        "CX0301",
        &["下雨{}，天花板都发霉了", "顶楼{}好几年了", "{}找谁维修"],
        &["屋顶漏雨", "楼顶防水层坏了", "房顶往下渗水"],
    ),
    (
        "CX0302",
        &["楼上{}，墙皮都泡了", "{}，楼上不配合维修", "家里{}一直滴水"],
        &["卫生间往下渗水", "暖气管道漏水", "下水管渗漏"],
    ),
    (
        "CX0401",
        &[
            "家里{}，室温只有十四度",
            "{}，供热公司说正常",
            "这几天{}，老人孩子受不了",
        ],
        &["暖气不热", "供暖温度不达标", "暖气片冰凉"],
    ),
    (
        "CX0402",
        &["{}怎么算的", "咨询{}的标准", "没有住人也要交{}吗"],
        &["取暖费", "供暖费", "供热费用"],
    ),
    (
        "CX0501",
        &[
            "小区{}，也没提前通知",
            "从早上开始{}，什么时候恢复",
            "{}一整天了",
        ],
        &["突然停水", "家里没水", "自来水断了"],
    ),
    (
        "CX0502",
        &["{}，没法用", "家里{}，担心不安全", "最近{}"],
        &["水压太低上不去楼", "自来水发黄浑浊", "水里有异味"],
    ),
    (
        "CG0101",
        &["路口{}，堵得过不去", "学校门口{}，影响通行", "{}，天天都有"],
        &["流动摊贩摆摊", "小贩推车卖东西", "早市占了马路"],
    ),
    (
        "CG0102",
        &["沿街商户{}，行人只能走马路", "饭店{}", "{}，城管来了又回来"],
        &["把桌椅摆到店外", "出店经营占人行道", "在门口摆放货物"],
    ),
    (
        "CG0201",
        &["{}，着火了怎么办", "小区{}，天天如此", "{}，物业管不了"],
        &["私家车堵住消防通道", "消防通道被车占了", "车停在消防车道上"],
    ),
    (
        "CG0202",
        &["{}，行人没法走", "学校附近{}", "{}，轮椅过不去"],
        &["人行道上乱停车", "汽车停满人行道", "车辆压在盲道上"],
    ),
    (
        "CG0301",
        &[
            "楼前{}，家里白天要开灯",
            "{}，申请修剪",
            "小区{}，一楼常年见不到太阳",
        ],
        &["大树挡住采光", "树木太高遮光", "树枝伸到窗户"],
    ),
    (
        "CG0302",
        &["路边{}，随时可能倒", "台风后{}，很危险", "{}砸到车了"],
        &["有棵枯树", "树干开裂倾斜", "断枝挂在树上"],
    ),
    (
        "CG0401",
        &["{}，吵得睡不着", "工地{}，举报多次", "{}到凌晨两点"],
        &["夜间施工噪音", "晚上还在打桩", "半夜搅拌车作业"],
    ),
    (
        "CG0402",
        &["{}，窗户都不敢开", "工地{}，到处是灰", "{}没有覆盖"],
        &["施工扬尘严重", "渣土车带泥上路", "土堆裸露"],
    ),
    (
        "CG0501",
        &["小区{}，臭气熏天", "{}好几天没人清理", "{}，招苍蝇"],
        &["垃圾桶满了没人清运", "生活垃圾堆在路边", "垃圾站外溢"],
    ),
    (
        "CG0502",
        &["楼道里{}，没人清运", "{}乱倒在绿化带", "小区{}堆了一个月"],
        &["装修垃圾堆放", "建筑垃圾", "渣土碎砖"],
    ),
    (
        "CG0601",
        &["顶楼住户{}，担心安全", "{}，影响防水", "有人{}"],
        &["在楼顶加盖房子", "楼顶私自搭建", "屋顶违建阳光房"],
    ),
    (
        "CG0602",
        &["一楼住户{}", "{}，占用公共绿地", "邻居{}"],
        &["私搭乱建围墙", "圈占院子搭棚", "在公共区域盖小屋"],
    ),
    (
        "CG0701",
        &[
            "路面{}，车辆经过很颠",
            "{}，晚上容易摔倒",
            "马路上{}，下雨积水",
        ],
        &["有个大坑", "坑洼不平", "沥青破损"],
    ),
    (
        "CG0702",
        &["路口{}，很危险", "{}，小孩差点掉下去", "人行道上{}"],
        &["井盖丢了", "井盖松动响声大", "下水井没盖子"],
    ),
    (
        "SH0101",
        &[
            "楼上{}，严重影响休息",
            "邻居{}，沟通无效",
            "{}，老人心脏不好",
        ],
        &["装修噪音很大", "每天半夜有噪音", "拖拽家具声音"],
    ),
    (
        "SH0102",
        &["楼下{}，吵到半夜", "{}，音响开得很大", "街边{}"],
        &["酒吧放音乐", "商铺用喇叭叫卖", "烧烤店营业噪音"],
    ),
    (
        "SH0103",
        &["小区{}，声音太大", "{}，每天晚上都有", "公园里{}"],
        &["广场舞音响", "有人唱歌放音响", "跳舞的音乐"],
    ),
    (
        "SH0201",
        &["邻居{}，协商不成", "{}，要求调解", "和对门{}"],
        &["把杂物堆在楼道堵门", "占用公共空间", "因为漏水起了纠纷"],
    ),
    (
        "SH0202",
        &["邻居家{}，整夜不停", "{}，不拴绳", "小区{}，孩子很害怕"],
        &["狗一直叫", "有人遛狗", "大型犬到处跑"],
    ),
    (
        "SC0101",
        &[
            "{}，商家拒绝退费",
            "在健身房{}，现在要求退款",
            "{}，余额不给退",
        ],
        &["办了预付卡", "充值了会员卡", "办了美容卡"],
    ),
    (
        "SC0102",
        &["{}，卡里的钱还没用完", "培训机构{}", "{}，老板联系不上"],
        &["商家突然关门跑路", "倒闭了", "卷款跑了"],
    ),
    (
        "SC0201",
        &["在饭店吃饭{}", "{}，后厨很脏", "外卖{}"],
        &["发现有苍蝇", "餐馆卫生太差", "吃完拉肚子"],
    ),
    (
        "SC0202",
        &["在超市买到{}", "{}，商家不认", "{}还在卖"],
        &["过期食品", "变质的牛奶", "过了保质期的面包"],
    ),
    (
        "SC0301",
        &["商店{}", "{}，结账时多收钱", "景区附近{}"],
        &["标价和实际收费不一致", "价格欺诈", "海鲜宰客"],
    ),
    (
        "SC0302",
        &["学校{}", "{}，没有任何依据", "医院{}"],
        &["乱收费", "强制收取服务费", "额外收费"],
    ),
    (
        "JT0101",
        &["{}后很不方便", "建议{}", "{}，老人出行困难"],
        &["公交线路调整", "增加一个公交站点", "公交站被撤了"],
    ),
    (
        "JT0102",
        &["公交司机{}", "{}，等了一个小时", "{}，态度恶劣"],
        &["到站不停车", "公交车间隔太长", "司机拒载"],
    ),
    (
        "ZX0101",
        &["咨询{}怎么办理", "{}后怎么补缴", "想了解{}"],
        &["社保缴费", "养老保险断缴", "灵活就业参保"],
    ),
    (
        "ZX0102",
        &["{}的比例是多少", "咨询{}流程", "{}需要什么材料"],
        &["医保报销", "门诊报销", "异地就医备案"],
    ),
    (
        "QT9901",
        &["{}", "想反映一下{}", "{}，不知道找哪个部门"],
        &["其他问题", "一些情况", "别的事情"],
    ),
];

const PLACES: &[&str] = &[
    "",
    "我住在云南路，",
    "香港中路街道某小区，",
    "八大关附近，",
    "金门路社区，",
    "燕儿岛路上，",
    "湛山街道这边，",
    "我家在珠海路，",
];
const TIMES: &[&str] = &[
    "",
    "已经持续一个月了，",
    "最近一周，",
    "从上周开始，",
    "每天都这样，",
    "反映过好几次，",
];
const ASKS: &[&str] = &[
    "",
    "希望尽快处理。",
    "请相关部门解决。",
    "麻烦给个答复。",
    "希望有人来看看。",
    "谢谢！",
];

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// `(label, text, held_out)`: `held_out` marks texts that use the leaf's
/// last phrasing, which the "unseen phrasing" evaluation keeps out of
/// training.
fn generate(per_leaf: usize, rng: &mut Rng) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for (code, phrases, details) in PHRASES {
        for _ in 0..per_leaf {
            let p = (rng.next() % phrases.len() as u64) as usize;
            let phrase: &str = phrases[p];
            let held_out = p + 1 == phrases.len();
            let detail: &str = rng.pick::<&str>(details);
            let problem = phrase.replace("{}", detail);
            let (place, time, ask) = (*rng.pick(PLACES), *rng.pick(TIMES), *rng.pick(ASKS));
            let text = format!("{place}{time}{problem}{ask}");
            out.push(((*code).to_owned(), text, held_out));
        }
    }
    // Shuffle (Fisher–Yates).
    for i in (1..out.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        out.swap(i, j);
    }
    out
}

fn evaluate(model: &Model, test: &[(String, String, bool)]) -> (f64, f64, f64) {
    let (mut top1, mut top3) = (0usize, 0usize);
    let started = Instant::now();
    for (code, text, _) in test {
        let s = model.suggest(text, 3);
        if s.first().is_some_and(|x| &x.code == code) {
            top1 += 1;
        }
        if s.iter().any(|x| &x.code == code) {
            top3 += 1;
        }
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / test.len() as f64;
    let n = test.len() as f64;
    (top1 as f64 / n, top3 as f64 / n, per)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo: Demo = toml::from_str(include_str!("../../../bin/jiesu/src/demo/370202.toml"))?;
    let parents: std::collections::HashSet<&str> =
        demo.categories.iter().map(|c| c.parent.as_str()).collect();
    let candidates: Vec<Candidate> = demo
        .categories
        .iter()
        .filter(|c| !parents.contains(c.code.as_str()))
        .map(|c| Candidate {
            code: c.code.clone(),
            name: c.name.clone(),
            keywords: c.keywords.clone(),
        })
        .collect();
    if candidates.len() != PHRASES.len() {
        return Err(format!(
            "{} demo leaves but {} phrase lists",
            candidates.len(),
            PHRASES.len()
        )
        .into());
    }
    if let Some((code, _, _)) = PHRASES
        .iter()
        .find(|(code, _, _)| !candidates.iter().any(|c| c.code == *code))
    {
        return Err(format!("{code} is not a demo leaf").into());
    }

    let mut rng = Rng(0x5eed_1234_abcd_0042);
    let data = generate(120, &mut rng);
    let codes: Vec<String> = candidates.iter().map(|c| c.code.clone()).collect();
    // 5 % of training tickets carry a wrong category, as filed tickets do.
    let noisy = |train: &[(String, String, bool)], rng: &mut Rng| -> Vec<(String, String)> {
        train
            .iter()
            .map(|(c, t, _)| {
                let label = if rng.next() % 100 < 5 {
                    rng.pick(&codes).clone()
                } else {
                    c.clone()
                };
                (label, t.clone())
            })
            .collect()
    };
    let report = |title: &str, train: &[(String, String)], test: &[(String, String, bool)]| {
        println!();
        println!(
            "{title}: {} training / {} held-out test requests",
            train.len(),
            test.len()
        );
        println!("| training tickets | top-1 | top-3 | µs per suggestion |");
        println!("|---|---|---|---|");
        for n in [0usize, 200, 1000, train.len()] {
            let n = n.min(train.len());
            let started = Instant::now();
            let model = Model::train(
                candidates.clone(),
                train[..n].iter().map(|(c, t)| (c.as_str(), t.as_str())),
            );
            let trained_ms = started.elapsed().as_secs_f64() * 1000.0;
            let (t1, t3, us) = evaluate(&model, test);
            let label = if n == 0 {
                "0 (keywords only)".to_owned()
            } else {
                format!("{n} (trained in {trained_ms:.0} ms)")
            };
            println!(
                "| {label} | {:.1} % | {:.1} % | {us:.0} |",
                t1 * 100.0,
                t3 * 100.0
            );
        }
    };
    println!(
        "category suggestion: {} leaves, {} generated requests, 5 % of training labels wrong",
        candidates.len(),
        data.len()
    );

    // A: random 80/20 split.
    let split = data.len() * 8 / 10;
    let train = noisy(&data[..split], &mut rng);
    report("A. random split", &train, &data[split..]);

    // B: every text using a leaf's last phrasing is held out: the model
    // must recognise a way of saying it that it never saw.
    let (unseen, seen): (Vec<_>, Vec<_>) = data.into_iter().partition(|x| x.2);
    let train = noisy(&seen, &mut rng);
    report("B. unseen phrasing", &train, &unseen);
    Ok(())
}
