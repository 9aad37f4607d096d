//! Names, groups, limits, few-shot availability.

mod common;

use common::legacy::{TaskOptions, expand_task_names, group_members, load_task};
use tasks::{Metric, TaskError, default_data_dir};

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn groups_expand_in_order_without_duplicates() {
    let got = expand_task_names(&names(&["piqa", "commonsense", "boolq", "arc_easy"])).unwrap();
    assert_eq!(
        got,
        names(&[
            "piqa",
            "hellaswag",
            "winogrande",
            "siqa",
            "openbookqa",
            "arc_easy",
            "arc_challenge",
            "commonsense_qa",
            "boolq"
        ])
    );
    let mmlu = expand_task_names(&names(&["mmlu_stem", "mmlu", "mmlu_anatomy"])).unwrap();
    assert_eq!(mmlu.len(), 57);
    assert_eq!(mmlu[0], "mmlu_abstract_algebra");
    assert!(mmlu.iter().all(|t| t.starts_with("mmlu_")));
    // lm-eval's name for siqa
    assert_eq!(expand_task_names(&names(&["social_iqa"])).unwrap(), names(&["siqa"]));
}

#[test]
fn unknown_names_are_rejected_with_the_known_ones() {
    let err = expand_task_names(&names(&["arc_easy", "hellaswog"])).unwrap_err();
    assert!(matches!(err, TaskError::UnknownTask { .. }));
    let msg = err.to_string();
    for known in ["hellaswag", "commonsense", "mmlu_stem", "boolq", "abstract_algebra"] {
        assert!(msg.contains(known), "{msg}");
    }
    assert!(msg.contains("hellaswog"));
    assert!(load_task("mmlu", &default_data_dir(), &TaskOptions::default()).is_err());
}

#[test]
fn group_members_for_reporting() {
    let all = group_members("mmlu").unwrap();
    assert_eq!(all.len(), 57);
    let stem = group_members("mmlu_stem").unwrap();
    assert!(stem.contains(&"mmlu_college_physics".to_string()));
    assert!(!stem.contains(&"mmlu_philosophy".to_string()));
    assert!(
        group_members("mmlu_humanities")
            .unwrap()
            .contains(&"mmlu_philosophy".to_string())
    );
    assert!(
        group_members("mmlu_social_sciences")
            .unwrap()
            .contains(&"mmlu_econometrics".to_string())
    );
    assert!(
        group_members("mmlu_other")
            .unwrap()
            .contains(&"mmlu_virology".to_string())
    );
    // Not an lm-eval aggregate group.
    assert_eq!(group_members("commonsense"), None);
    assert_eq!(group_members("arc_easy"), None);
}

#[test]
fn limit_takes_a_prefix_and_shots_do_not_depend_on_it() {
    let dir = default_data_dir();
    let full = load_task(
        "arc_challenge",
        &dir,
        &TaskOptions {
            shots: 5,
            seed: 1234,
            limit: None,
        },
    )
    .unwrap();
    let part = load_task(
        "arc_challenge",
        &dir,
        &TaskOptions {
            shots: 5,
            seed: 1234,
            limit: Some(17),
        },
    )
    .unwrap();
    assert_eq!(part.items.len(), 17);
    assert_eq!(part.items[..], full.items[..17]);
    assert!(part.items.iter().enumerate().all(|(i, it)| it.doc_id == i));
    // Another seed, other shots.
    let other = load_task(
        "arc_challenge",
        &dir,
        &TaskOptions {
            shots: 5,
            seed: 1,
            limit: Some(17),
        },
    )
    .unwrap();
    assert_ne!(other.items[0].requests[0].context, part.items[0].requests[0].context);
    // The few-shot file is among the hashed inputs only when used.
    assert_eq!(full.data_files.len(), 2);
    let zero = load_task("arc_challenge", &dir, &TaskOptions::default()).unwrap();
    assert_eq!(zero.data_files.len(), 1);
    assert_eq!(zero.metrics, [Metric::Acc, Metric::AccNorm]);
    assert_eq!(zero.metrics[1].name(), "acc_norm");
}

#[test]
fn shots_without_a_bundled_training_split_are_refused() {
    let dir = default_data_dir();
    for name in ["hellaswag", "piqa", "siqa", "winogrande", "boolq"] {
        let err = load_task(
            name,
            &dir,
            &TaskOptions {
                shots: 1,
                ..TaskOptions::default()
            },
        )
        .unwrap_err();
        assert!(matches!(err, TaskError::Fewshot { .. }), "{name}: {err}");
        assert!(err.to_string().contains("train"), "{err}");
    }
    // MMLU has 5 dev questions per subject.
    let err = load_task(
        "mmlu_anatomy",
        &dir,
        &TaskOptions {
            shots: 6,
            ..TaskOptions::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("only 5"), "{err}");
}

#[test]
fn scoring_follows_lm_eval() {
    let t = load_task(
        "arc_easy",
        &default_data_dir(),
        &TaskOptions {
            limit: Some(1),
            ..TaskOptions::default()
        },
    )
    .unwrap();
    let item = &t.items[0]; // gold 0, choice lengths [59, 54, 50, 43]
    // Raw: choice 3 wins; per character: choice 0 (-10/59 > -9/43).
    let lls = [-10.0, -12.0, -11.0, -9.0];
    assert_eq!(item.predictions(&lls), (3, 0));
    assert_eq!(Metric::Acc.score(item, &lls), 0.0);
    assert_eq!(Metric::AccNorm.score(item, &lls), 1.0);
}

#[test]
fn data_dir_defaults_to_the_crate_folder() {
    if std::env::var_os("HARNESS_DATA_DIR").is_none() {
        assert_eq!(
            default_data_dir(),
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
        );
    }
}
