//! Tests of next night's churn: counts, untouched rows, the eligible pool.

use super::*;

#[test]
fn next_night_churn_counts_and_untouched_rows() {
    const N: usize = 30_000;
    let base_cfg = Config {
        leaver_percent: 5.0,
        ..config(N as u64, 11)
    };
    let night_cfg = Config {
        next_night: Some(3.0),
        ..base_cfg.clone()
    };
    let base = String::from_utf8(generate(&base_cfg)).expect("utf-8"); // ok: test
    let night = String::from_utf8(generate(&night_cfg)).expect("utf-8"); // ok: test
    let base_lines: Vec<&str> = base.lines().collect();
    let night_lines: Vec<&str> = night.lines().collect();
    assert_eq!(base_lines[0], night_lines[0]);

    let (mut untouched, mut updates, mut leavers) = (0, 0, 0);
    for i in 1..=N {
        if base_lines[i] == night_lines[i] {
            untouched += 1;
            continue;
        }
        let b = &parse_csv(&format!("{}\n", base_lines[i]))[0];
        let n = &parse_csv(&format!("{}\n", night_lines[i]))[0];
        assert_eq!(b[0], n[0], "row order must be preserved");
        assert_eq!(b[10], "", "base leavers must not churn");
        let changed: Vec<usize> = (0..12).filter(|&c| b[c] != n[c]).collect();
        match changed.as_slice() {
            [10] if n[10] == "leaver" => leavers += 1,
            [4] | [5] | [8] => updates += 1,
            other => panic!("unexpected change in columns {other:?}: {b:?} -> {n:?}"),
        }
    }
    let base_users: HashSet<&str> = base_lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap_or(""))
        .collect();
    let adds = &night_lines[N + 1..];
    for line in adds {
        let rec = &parse_csv(&format!("{line}\n"))[0];
        assert!(!base_users.contains(rec[0].as_str()), "add reuses a username");
        assert_eq!(rec[10], "", "new starters are not leavers");
    }

    // 3% of 30k = 900 changes, a third of each; selection sampling makes them exact.
    let plan = ChurnPlan::new(&Generator::new(11, 5.0), N as u64, 3.0);
    assert_eq!((plan.adds, plan.updates, plan.leavers), (300, 300, 300));
    for (what, got) in [("adds", adds.len()), ("updates", updates), ("leavers", leavers)] {
        assert!((270..=330).contains(&got), "{what}: {got}");
    }
    assert_eq!(untouched + updates + leavers, N);
    assert_eq!(updates, 300);
    assert_eq!(leavers, 300);
    assert_eq!(adds.len(), 300);

    // Churn is spread over the file, not bunched at the start.
    let first_half_changes = (1..=N / 2).filter(|&i| base_lines[i] != night_lines[i]).count();
    assert!((240..=360).contains(&first_half_changes), "{first_half_changes}");

    // Adds are exactly the rows a bigger base roster would have had (minus leaver flags).
    let bigger = String::from_utf8(generate(&config(N as u64 + 300, 11))).expect("utf-8"); // ok: test
    let bigger_lines: Vec<&str> = bigger.lines().collect();
    assert_eq!(&bigger_lines[N + 1..], adds);
}

#[test]
fn next_night_zero_percent_is_identical() {
    let base = config(2_000, 5);
    let night = Config {
        next_night: Some(0.0),
        ..base.clone()
    };
    assert_eq!(generate(&base), generate(&night));
}

#[test]
fn churn_never_exceeds_eligible_rows() {
    let gen = Generator::new(1, 100.0);
    let plan = ChurnPlan::new(&gen, 100, 100.0);
    assert_eq!(plan.eligible, 0);
    assert_eq!((plan.updates, plan.leavers), (0, 0));
    let cfg = Config {
        leaver_percent: 100.0,
        next_night: Some(100.0),
        ..config(100, 1)
    };
    let text = String::from_utf8(generate(&cfg)).expect("utf-8"); // ok: test
    assert_eq!(text.lines().count(), 1 + 100 + plan.adds as usize);
}
