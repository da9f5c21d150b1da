//! The `leak_evaluation` line's fields, as docs/detection.md ("Replay
//! output") names them.
use super::*;

fn trend(window_secs: f64) -> Trend {
    Trend { slope_bytes_per_s: 1234.56789, confidence: 0.99999912, fit: 0.98765, window_secs }
}

fn tested(outcome: Outcome, at: f64) -> Option<Tested> {
    Some(Tested { outcome, at })
}

fn json(explanation: &Explanation, t: f64) -> String {
    serde_json::to_string(&EvaluationLine::new(explanation, t)).unwrap()
}

#[test]
fn every_outcome_and_veto_is_named_with_its_figure() {
    let explanation = Explanation {
        windows: [
            tested(Outcome::Leak(trend(600.0)), 1200.0),
            tested(Outcome::LevellingOff { reaccelerating: true, late_to_early: 0.4567, bend_z: Some(-3.456) }, 1200.0),
            tested(Outcome::NoLeak(Veto::StepFitsBetter { line_to_step: 0.8512 }), 1080.0),
            tested(Outcome::NoLeak(Veto::LargeFall { fall_to_rise: 0.6 }), 1200.0),
            tested(Outcome::NoLeak(Veto::NotSignificant { p_value: 0.0123456 }), 1200.0),
            None,
        ],
        verdict: Verdict::Leak(trend(600.0)),
        held_for_secs: Some(60.0),
        confirm_after_secs: Some(180.0),
        reported: false,
        clear_for_secs: None,
    };
    assert_eq!(
        json(&explanation, 1200.0),
        concat!(
            r#"{"verdict":{"kind":"leak","window_s":600,"slope_bytes_per_s":1234.568,"confidence":0.999999,"fit_r2":0.988},"#,
            r#""held_for_s":60.0,"confirm_after_s":180.0,"reported":false,"windows":["#,
            r#"{"window_s":600,"outcome":"leak","slope_bytes_per_s":1234.568,"confidence":0.999999,"fit_r2":0.988},"#,
            r#"{"window_s":1200,"outcome":"levelling_off","late_to_early":0.457,"bend_z":-3.46,"reaccelerating":true},"#,
            r#"{"window_s":1800,"tested_t":1080,"outcome":"no_leak","veto":"step_fits_better","line_to_step":0.851},"#,
            r#"{"window_s":3600,"outcome":"no_leak","veto":"large_fall","fall_to_rise":0.6},"#,
            r#"{"window_s":7200,"outcome":"no_leak","veto":"not_significant","p_value":0.012346}]}"#,
        )
    );
}

#[test]
fn the_remaining_vetoes_and_verdicts_are_named() {
    let mut explanation = Explanation {
        windows: [
            tested(Outcome::NoLeak(Veto::TooFewPoints), 60.0),
            tested(Outcome::NoLeak(Veto::NotRising), 60.0),
            tested(Outcome::NoLeak(Veto::BelowMinRate { slope_bytes_per_s: 100.0 }), 60.0),
            None,
            None,
            None,
        ],
        verdict: Verdict::None,
        held_for_secs: None,
        confirm_after_secs: None,
        reported: true,
        clear_for_secs: Some(120.0),
    };
    assert_eq!(
        json(&explanation, 60.0),
        concat!(
            r#"{"verdict":{"kind":"none"},"reported":true,"clear_for_s":120.0,"windows":["#,
            r#"{"window_s":600,"outcome":"no_leak","veto":"too_few_points"},"#,
            r#"{"window_s":1200,"outcome":"no_leak","veto":"not_rising"},"#,
            r#"{"window_s":1800,"outcome":"no_leak","veto":"below_min_rate","slope_bytes_per_s":100.0}]}"#,
        )
    );
    for (verdict, kind) in [
        (Verdict::RisingTroughs(trend(3600.0)), "rising_troughs"),
        (Verdict::LikeEarlierCycles(trend(600.0)), "like_earlier_cycles"),
        (Verdict::HeapSizing(trend(1200.0)), "heap_sizing"),
    ] {
        explanation.verdict = verdict;
        let line = json(&explanation, 60.0);
        assert!(line.starts_with(&format!(r#"{{"verdict":{{"kind":"{kind}","window_s":"#)), "{line}");
    }
}
