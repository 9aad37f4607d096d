//! First items, written out by hand from each task's lm-eval template (and cross-checked with the
//! output of lm-eval 0.4.12 itself, see reference/).

mod common;

use common::legacy::{TaskOptions, load_task};
use tasks::{LoglikelihoodRequest, McItem, Metric, default_data_dir};

fn load(name: &str, shots: usize, limit: usize) -> common::legacy::TaskInstance {
    let options = TaskOptions {
        shots,
        seed: 1234,
        limit: Some(limit),
    };
    load_task(name, &default_data_dir(), &options).unwrap()
}

/// An item whose choices share one context (every task but winogrande).
fn shared(ctx: &str, conts: &[&str]) -> Vec<LoglikelihoodRequest> {
    conts
        .iter()
        .map(|c| LoglikelihoodRequest {
            context: ctx.to_string(),
            continuation: c.to_string(),
        })
        .collect()
}

fn check(name: &str, item: &McItem, ctx: &str, conts: &[&str], gold: usize) {
    assert_eq!(item.doc_id, 0, "{name}");
    assert_eq!(item.requests, shared(ctx, conts), "{name}");
    assert_eq!(item.gold, gold, "{name}");
    // acc_norm length: the choice without the target delimiter, in characters.
    let lens: Vec<usize> = conts.iter().map(|c| c.chars().count() - 1).collect();
    assert_eq!(item.choice_chars, lens, "{name}");
}

#[test]
fn hellaswag_first_item() {
    // utils.py: preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize())
    let t = load("hellaswag", 0, 1);
    assert_eq!(t.metrics, [Metric::Acc, Metric::AccNorm]);
    check(
        "hellaswag",
        &t.items[0],
        "Roof shingle removal: A man is sitting on a roof. He",
        &[
            " is using wrap to wrap a pair of skis.",
            " is ripping level tiles off.",
            " is holding a rubik's cube.",
            " starts pulling up roofing on a roof.",
        ],
        3,
    );
}

#[test]
fn arc_first_items() {
    // "Question: {{question}}\nAnswer:" + " " + choices.text[i]
    let t = load("arc_easy", 0, 1);
    assert_eq!(t.metrics, [Metric::Acc, Metric::AccNorm]);
    check(
        "arc_easy",
        &t.items[0],
        "Question: Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:",
        &[
            " Sunlight is the source of energy for nearly all ecosystems.",
            " Most ecosystems are found on land instead of in water.",
            " Carbon dioxide is more available than other gases.",
            " The producers in all ecosystems are plants.",
        ],
        0,
    );
    let t = load("arc_challenge", 0, 1);
    check(
        "arc_challenge",
        &t.items[0],
        "Question: An astronomer observes that a planet rotates faster after a meteorite impact. Which is the most likely effect of this increase in rotation?\nAnswer:",
        &[
            " Planetary density will decrease.",
            " Planetary years will become longer.",
            " Planetary days will become shorter.",
            " Planetary gravity will become stronger.",
        ],
        2,
    );
}

#[test]
fn arc_easy_one_shot_seed_1234() {
    // Random(1234).sample(train (2251 docs), 1) → [1805]: ARC-Easy-Train line 1806.
    let t = load("arc_easy", 1, 2);
    check(
        "arc_easy 1-shot",
        &t.items[0],
        "Question: Which of these resources will most likely be depleted first?\nAnswer: Fossil fuels\n\n\
         Question: Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:",
        &[
            " Sunlight is the source of energy for nearly all ecosystems.",
            " Most ecosystems are found on land instead of in water.",
            " Carbon dioxide is more available than other gases.",
            " The producers in all ecosystems are plants.",
        ],
        0,
    );
    // The second item's shot is the sampler's second draw ([478]: train line 479).
    assert!(
        t.items[1].requests[0].context.starts_with(
            "Question: Which action is an example of good water management?\nAnswer: turning off the faucet when brushing teeth\n\nQuestion: "
        ),
        "{:?}",
        t.items[1].requests[0].context
    );
}

#[test]
fn piqa_first_item() {
    // "Question: {{goal}}\nAnswer:", choices [sol1, sol2]
    let t = load("piqa", 0, 1);
    assert_eq!(t.metrics, [Metric::Acc, Metric::AccNorm]);
    check(
        "piqa",
        &t.items[0],
        "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:",
        &[
            " Provide the guinea pig with a cage full of a few inches of bedding made of ripped paper strips, you will also need to supply it with a water bottle and a food dish.",
            " Provide the guinea pig with a cage full of a few inches of bedding made of ripped jeans material, you will also need to supply it with a water bottle and a food dish.",
        ],
        0,
    );
}

#[test]
fn winogrande_first_item_is_partially_scored() {
    // Contexts: sentence[:idx] + option; shared continuation " " + sentence[idx+1:].strip().
    let t = load("winogrande", 0, 1);
    assert_eq!(t.metrics, [Metric::Acc]);
    let item = &t.items[0];
    assert_eq!(
        item.requests,
        vec![
            LoglikelihoodRequest {
                context: "Sarah was a much better surgeon than Maria so Sarah".into(),
                continuation: " always got the easier cases.".into(),
            },
            LoglikelihoodRequest {
                context: "Sarah was a much better surgeon than Maria so Maria".into(),
                continuation: " always got the easier cases.".into(),
            },
        ]
    );
    assert_eq!(item.gold, 1);
    // len(choice) of the partial sentences.
    assert_eq!(item.choice_chars, [51, 51]);
}

#[test]
fn siqa_first_item() {
    // "Q: {{context}} {{question}}\nA:", choices [answerA, answerB, answerC], gold label - 1
    let t = load("siqa", 0, 1);
    assert_eq!(t.metrics, [Metric::Acc]);
    check(
        "siqa",
        &t.items[0],
        "Q: Tracy didn't go home that evening and resisted Riley's attacks. What does Tracy need to do before this?\nA:",
        &[" make a new plan", " Go home and see Riley", " Find somewhere to go"],
        2,
    );
}

#[test]
fn openbookqa_first_item() {
    // doc_to_text: question_stem (no "Question:" prefix)
    let t = load("openbookqa", 0, 1);
    assert_eq!(t.metrics, [Metric::Acc, Metric::AccNorm]);
    check(
        "openbookqa",
        &t.items[0],
        "A person wants to start saving money so that they can afford a nice vacation at the end of the year. After looking over their budget and expenses, they decide the best way to save money is to",
        &[
            " make more phone calls",
            " quit eating lunch out",
            " buy less with monopoly money",
            " have lunch with friends",
        ],
        1,
    );
}

const CSQA_Q0: &str = "Question: A revolving door is convenient for two direction travel, but it also serves as a security measure at a what?\nA. bank\nB. library\nC. department store\nD. mall\nE. new york\nAnswer:";

#[test]
fn commonsense_qa_first_item() {
    // Letters are the choices; the options are listed in the question.
    let t = load("commonsense_qa", 0, 1);
    assert_eq!(t.metrics, [Metric::Acc]);
    check(
        "commonsense_qa",
        &t.items[0],
        CSQA_Q0,
        &[" A", " B", " C", " D", " E"],
        0,
    );
}

#[test]
fn commonsense_qa_five_shot_draws_six() {
    // test_split and fewshot_split are both unset, so lm-eval samples 6 train docs and keeps the
    // first 5 that are not the evaluated doc: Random(1234).sample(range(9741), 6) =
    // [7220, 1914, 122, 1485, 9539, 572] → train lines 7221, 1915, 123, 1486, 9540.
    let t = load("commonsense_qa", 5, 1);
    let ctx = "Question: Jerry was too old for this shit.  He was too square, too.  He never did drugs, never drank, but he was in his what?\nA. fifties\nB. geometry\nC. polygon\nD. four sides\nE. town center\nAnswer: A\n\n\
               Question: Some people get carried away with shopping, they'll often be buying products they wouldn't even find themselves what?\nA. being able to use\nB. disagreements\nC. spending money\nD. economic boom\nE. wrapping\nAnswer: A\n\n\
               Question: The man uses grooming before a job interview, what is he trying to portray?\nA. looking good\nB. beauty\nC. tardiness\nD. handsomeness\nE. neatness\nAnswer: E\n\n\
               Question: Matt had issues controlling his anger, what did he do when someone set him off?\nA. destroy enemy\nB. punch\nC. cool off\nD. write letter\nE. illustrate point\nAnswer: B\n\n\
               Question: How might a bank statement arrive at someone's house?\nA. legal document\nB. newspaper\nC. press release\nD. email\nE. mail\nAnswer: E\n\n"
        .to_string()
        + CSQA_Q0;
    check(
        "commonsense_qa 5-shot",
        &t.items[0],
        &ctx,
        &[" A", " B", " C", " D", " E"],
        0,
    );
}

#[test]
fn boolq_first_item() {
    // "{{passage}}\nQuestion: {{question}}?\nAnswer:", choices ["no", "yes"]
    let t = load("boolq", 0, 1);
    assert_eq!(t.metrics, [Metric::Acc]);
    let ctx = "Ethanol fuel -- All biomass goes through at least some of these steps: it needs to be grown, collected, dried, fermented, distilled, and burned. All of these steps require resources and an infrastructure. The total amount of energy input into the process compared to the energy released by burning the resulting ethanol fuel is known as the energy balance (or ``energy returned on energy invested''). Figures compiled in a 2007 report by National Geographic Magazine point to modest results for corn ethanol produced in the US: one unit of fossil-fuel energy is required to create 1.3 energy units from the resulting ethanol. The energy balance for sugarcane ethanol produced in Brazil is more favorable, with one unit of fossil-fuel energy required to create 8 from the ethanol. Energy balance estimates are not easily produced, thus numerous such reports have been generated that are contradictory. For instance, a separate survey reports that production of ethanol from sugarcane, which requires a tropical climate to grow productively, returns from 8 to 9 units of energy for each unit expended, as compared to corn, which only returns about 1.34 units of fuel energy for each unit of energy expended. A 2006 University of California Berkeley study, after analyzing six separate studies, concluded that producing ethanol from corn uses much less petroleum than producing gasoline.\nQuestion: does ethanol take more energy make that produces?\nAnswer:";
    check("boolq", &t.items[0], ctx, &[" no", " yes"], 0);
}

const MMLU_AA_Q0: &str = "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\nA. 0\nB. 4\nC. 2\nD. 6\nAnswer:";
const MMLU_AA_DESC: &str = "The following are multiple choice questions (with answers) about abstract algebra.\n\n";

#[test]
fn mmlu_abstract_algebra_zero_shot() {
    // description + "{{question.strip()}}\nA. …\nD. {{choices[3]}}\nAnswer:", choices A–D
    let t = load("mmlu_abstract_algebra", 0, 1);
    assert_eq!(t.metrics, [Metric::Acc]);
    let ctx = format!("{MMLU_AA_DESC}{MMLU_AA_Q0}");
    check("mmlu 0-shot", &t.items[0], &ctx, &[" A", " B", " C", " D"], 1);
}

#[test]
fn mmlu_abstract_algebra_five_shot_uses_dev_in_order() {
    // fewshot_split: dev, sampler: first_n → the 5 dev questions in file order.
    let t = load("mmlu_abstract_algebra", 5, 3);
    let shots = "Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer: B\n\n\
                 Statement 1 | If aH is an element of a factor group, then |aH| divides |a|. Statement 2 | If H and K are subgroups of G then HK is a subgroup of G.\nA. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer: B\n\n\
                 Statement 1 | Every element of a group generates a cyclic subgroup of the group. Statement 2 | The symmetric group S_10 has 10 elements.\nA. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer: C\n\n\
                 Statement 1| Every function from a finite set onto itself must be one to one. Statement 2 | Every subgroup of an abelian group is abelian.\nA. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer: A\n\n\
                 Find the characteristic of the ring 2Z.\nA. 0\nB. 3\nC. 12\nD. 30\nAnswer: A\n\n";
    let ctx = format!("{MMLU_AA_DESC}{shots}{MMLU_AA_Q0}");
    check("mmlu 5-shot", &t.items[0], &ctx, &[" A", " B", " C", " D"], 1);
    // Same shots for every item.
    for item in &t.items {
        assert!(item.requests[0].context.starts_with(&format!("{MMLU_AA_DESC}{shots}")));
    }
}
