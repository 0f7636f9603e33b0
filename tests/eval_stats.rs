//! The paired randomization test: exact p-values on small cases, sensible ones on large.
use optical::eval::{Averaging, Metric, Qrels, Run, compare, evaluate, paired_randomization_test};

#[test]
fn exact_p_values_on_small_samples() {
    // Diffs [1, 1]: sign patterns give sums 2, 0, 0, -2; |sum| >= 2 in 2 of 4.
    assert_eq!(
        paired_randomization_test(&[0.0, 0.0], &[1.0, 1.0], 0, 0),
        0.5
    );
    // Diffs [1, -1]: observed 0, every pattern is at least as extreme.
    assert_eq!(
        paired_randomization_test(&[0.0, 1.0], &[1.0, 0.0], 0, 0),
        1.0
    );
    // Ten queries all better by 0.1: only the all-same-sign patterns reach |sum| = 1 → 2 / 1024.
    let a = vec![0.2; 10];
    let b = vec![0.3; 10];
    let p = paired_randomization_test(&a, &b, 0, 0);
    assert!((p - 2.0 / 1024.0).abs() < 1e-15, "{p}");
    assert_eq!(paired_randomization_test(&a, &a, 0, 0), 1.0);
}

#[test]
fn sampled_p_values_are_reproducible_and_sensible() {
    // 200 queries; B better on 120 of them by 0.5, worse on 80 by 0.5: mean delta 0.1.
    let a = vec![0.5; 200];
    let b: Vec<f64> = (0..200)
        .map(|i| if i % 5 < 3 { 1.0 } else { 0.0 })
        .collect();
    let p1 = paired_randomization_test(&a, &b, 20_000, 7);
    let p2 = paired_randomization_test(&a, &b, 20_000, 7);
    assert_eq!(p1, p2);
    // Two-sided binomial tail of 120/200 at p = 0.5 is about 0.0057.
    assert!(p1 > 0.002 && p1 < 0.012, "{p1}");
    // No difference at all.
    assert_eq!(paired_randomization_test(&a, &a, 1000, 1), 1.0);
}

#[test]
fn compare_pairs_queries_of_two_evaluations() {
    let mut qrels = Qrels::new();
    let mut good = Run::new();
    let mut bad = Run::new();
    for q in 0..30 {
        let qid = format!("q{q}");
        qrels.insert(&qid, "rel", 1).unwrap();
        good.insert(&qid, vec![("rel".to_string(), 2.0), ("x".to_string(), 1.0)])
            .unwrap();
        bad.insert(&qid, vec![("rel".to_string(), 1.0), ("x".to_string(), 2.0)])
            .unwrap();
    }
    let metrics = [Metric::Mrr(10)];
    let eg = evaluate(&good, &qrels, &metrics, Averaging::AllQrels);
    let eb = evaluate(&bad, &qrels, &metrics, Averaging::AllQrels);
    let c = compare(&eb, &eg, Metric::Mrr(10), 10_000, 3).unwrap();
    assert_eq!(c.queries, 30);
    assert_eq!((c.mean_a, c.mean_b), (0.5, 1.0));
    assert!((c.delta() - 0.5).abs() < 1e-12);
    assert!(c.p_value < 0.001, "{}", c.p_value);
    assert!(compare(&eb, &eg, Metric::Ndcg(10), 100, 3).is_err());

    let mut fewer = Run::new();
    fewer.insert("q0", vec![("rel".to_string(), 1.0)]).unwrap();
    // AllQrels: the 29 queries missing from `fewer` count 0 there.
    let ef = evaluate(&fewer, &qrels, &metrics, Averaging::AllQrels);
    let c = compare(&ef, &eg, Metric::Mrr(10), 10_000, 3).unwrap();
    assert_eq!((c.queries, c.mean_a, c.mean_b), (30, 1.0 / 30.0, 1.0));
    // RunAndQrels: the query sets must agree.
    let ef = evaluate(&fewer, &qrels, &metrics, Averaging::RunAndQrels);
    let eg = evaluate(&good, &qrels, &metrics, Averaging::RunAndQrels);
    let err = format!(
        "{:#}",
        compare(&ef, &eg, Metric::Mrr(10), 100, 3).unwrap_err()
    );
    assert!(err.contains("different queries"), "{err}");
}
