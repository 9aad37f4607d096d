//! Item counts equal the official split sizes.

mod common;

use common::legacy::{TaskOptions, expand_task_names, load_task};
use tasks::default_data_dir;

fn count(name: &str) -> usize {
    load_task(name, &default_data_dir(), &TaskOptions::default())
        .unwrap()
        .items
        .len()
}

#[test]
fn single_tasks_have_the_official_counts() {
    for (name, n) in [
        ("hellaswag", 10042),
        ("arc_easy", 2376),
        ("arc_challenge", 1172),
        ("piqa", 1838),
        ("winogrande", 1267),
        ("siqa", 1954),
        ("openbookqa", 500),
        ("commonsense_qa", 1221),
        ("boolq", 3270),
    ] {
        assert_eq!(count(name), n, "{name}");
    }
}

#[test]
fn mmlu_has_14042_items_in_57_subjects() {
    let subjects = expand_task_names(&["mmlu".to_string()]).unwrap();
    assert_eq!(subjects.len(), 57);
    let total: usize = subjects.iter().map(|s| count(s)).sum();
    assert_eq!(total, 14042);
    assert_eq!(count("mmlu_abstract_algebra"), 100);
    assert_eq!(count("mmlu_professional_law"), 1534);
    // Category groups partition the 57 subjects.
    let per_group: Vec<usize> = ["mmlu_stem", "mmlu_humanities", "mmlu_social_sciences", "mmlu_other"]
        .iter()
        .map(|g| common::legacy::group_members(g).unwrap().len())
        .collect();
    assert_eq!(per_group, [19, 13, 12, 13]);
}
