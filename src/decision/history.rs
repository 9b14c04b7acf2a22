//! Decisions over what happened before: lockouts after repeated failures, and velocity rules
//! over approved payments. Pure functions of the history ([`crate::ledger`] keeps it): every
//! terminal that holds the same events reaches the same verdict, and a restart changes nothing.

use std::time::Duration;

use crate::policy::{Factor, VelocityAction, VelocityRule, VelocityScope};

/// One verification in a lockout history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// When, in milliseconds since the epoch.
    pub at_ms: i64,
    /// A biometric failure (`true`) or a success, which clears the failures before it.
    pub failed: bool,
}

/// How long a lock is still in force at `now_ms` after `history` (oldest first): failures
/// within `window` of each other accumulate; the one that reaches `max` locks for `lockout`
/// and starts the count again; a success clears the count.
pub fn lockout(
    history: &[Attempt],
    max: u32,
    window: Duration,
    lockout: Duration,
    now_ms: i64,
) -> Option<Duration> {
    let window_ms = window.as_millis() as i64;
    let lockout_ms = lockout.as_millis() as i64;
    let mut failures: std::collections::VecDeque<i64> = std::collections::VecDeque::new();
    let mut locked_until = i64::MIN;
    for attempt in history {
        if !attempt.failed {
            failures.clear();
            continue;
        }
        while failures
            .front()
            .is_some_and(|t| attempt.at_ms - *t >= window_ms)
        {
            failures.pop_front();
        }
        failures.push_back(attempt.at_ms);
        if super::lockout_reached(failures.len(), max) {
            locked_until = locked_until.max(attempt.at_ms.saturating_add(lockout_ms));
            failures.clear();
        }
    }
    (locked_until > now_ms).then(|| Duration::from_millis((locked_until - now_ms) as u64))
}

/// One approved payment in a velocity history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    /// When, in milliseconds since the epoch.
    pub at_ms: i64,
    /// Amount in minor units.
    pub amount_minor: u64,
    /// ISO 4217 currency.
    pub currency: String,
    /// Whether it used a factor beyond face and liveness.
    pub strong: bool,
}

/// The payment being decided.
#[derive(Clone, Copy, Debug)]
pub struct Payment<'a> {
    /// Amount in minor units.
    pub amount_minor: u64,
    /// ISO 4217 currency.
    pub currency: &'a str,
    /// When, in milliseconds since the epoch.
    pub at_ms: i64,
}

/// What the velocity rules make of a payment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VelocityVerdict {
    /// The first refusing rule past its limit.
    pub refused_by: Option<String>,
    /// Stepping-up rules past their limits.
    pub step_up_by: Vec<String>,
    /// The factors they require, sorted.
    pub step_up: Vec<Factor>,
    /// Alerting rules past their limits.
    pub alerts: Vec<String>,
}

/// Whether `payment` would take `history` (oldest first) past one of `rule`'s limits.
pub fn past_limit(rule: &VelocityRule, history: &[Approval], payment: &Payment<'_>) -> bool {
    let window_ms = (rule.window_seconds as i64).saturating_mul(1000);
    let total = |approvals: &[&Approval]| {
        approvals
            .iter()
            .filter(|a| a.currency == payment.currency)
            .fold(payment.amount_minor, |sum, a| {
                sum.saturating_add(a.amount_minor)
            })
    };
    let in_window: Vec<&Approval> = history
        .iter()
        .filter(|a| payment.at_ms - a.at_ms < window_ms)
        .collect();
    let count = in_window.len() as u64 + 1;
    let amount = total(&in_window);
    let since_strong: Vec<&Approval> = match history.iter().rposition(|a| a.strong) {
        Some(last) => history[last + 1..].iter().collect(),
        None => history.iter().collect(),
    };
    let count_since = since_strong.len() as u64 + 1;
    let amount_since = total(&since_strong);
    rule.max_approvals.is_some_and(|m| count > u64::from(m))
        || rule.max_amount_minor.is_some_and(|m| amount > m)
        || rule
            .max_approvals_since_strong
            .is_some_and(|m| count_since > u64::from(m))
        || rule
            .max_amount_since_strong_minor
            .is_some_and(|m| amount_since > m)
}

/// The verdict of `rules` on `payment`, given the customer's and the terminal's approvals
/// (oldest first).
pub fn velocity(
    rules: &[VelocityRule],
    subject_history: &[Approval],
    terminal_history: &[Approval],
    payment: &Payment<'_>,
) -> VelocityVerdict {
    let mut verdict = VelocityVerdict::default();
    for rule in rules {
        let history = match rule.per {
            VelocityScope::Subject => subject_history,
            VelocityScope::Terminal => terminal_history,
        };
        if !past_limit(rule, history, payment) {
            continue;
        }
        match rule.action {
            VelocityAction::Refuse => {
                verdict.refused_by.get_or_insert_with(|| rule.name.clone());
            }
            VelocityAction::StepUp => {
                verdict.step_up_by.push(rule.name.clone());
                verdict.step_up.extend(rule.step_up_factors.iter().copied());
            }
            VelocityAction::Alert => verdict.alerts.push(rule.name.clone()),
        }
    }
    verdict.step_up.sort();
    verdict.step_up.dedup();
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: i64 = 1000;

    fn fail(at: i64) -> Attempt {
        Attempt {
            at_ms: at * S,
            failed: true,
        }
    }

    fn ok(at: i64) -> Attempt {
        Attempt {
            at_ms: at * S,
            failed: false,
        }
    }

    fn lock(history: &[Attempt], now: i64) -> Option<Duration> {
        lockout(
            history,
            3,
            Duration::from_secs(60),
            Duration::from_secs(300),
            now * S,
        )
    }

    #[test]
    fn lockouts_follow_the_history() {
        assert_eq!(lock(&[fail(0), fail(1)], 2), None);
        assert_eq!(
            lock(&[fail(0), fail(1), fail(2)], 3),
            Some(Duration::from_secs(299))
        );
        assert_eq!(lock(&[fail(0), fail(1), fail(2)], 302), None, "expired");
        assert_eq!(lock(&[fail(0), fail(10), fail(70)], 71), None, "window");
        assert_eq!(
            lock(&[fail(0), fail(1), ok(2), fail(3)], 4),
            None,
            "cleared"
        );
    }

    fn rule(action: VelocityAction) -> VelocityRule {
        VelocityRule {
            name: "r".into(),
            per: VelocityScope::Subject,
            window_seconds: 86_400,
            max_approvals: None,
            max_amount_minor: None,
            max_approvals_since_strong: None,
            max_amount_since_strong_minor: None,
            action,
            step_up_factors: vec![Factor::Voice],
        }
    }

    fn paid(at: i64, amount: u64, strong: bool) -> Approval {
        Approval {
            at_ms: at * S,
            amount_minor: amount,
            currency: "EUR".into(),
            strong,
        }
    }

    fn pay(at: i64, amount: u64) -> Payment<'static> {
        Payment {
            amount_minor: amount,
            currency: "EUR",
            at_ms: at * S,
        }
    }

    #[test]
    fn psd2_pattern_five_payments_or_150_since_strong() {
        let psd2 = VelocityRule {
            max_approvals_since_strong: Some(5),
            max_amount_since_strong_minor: Some(15_000),
            ..rule(VelocityAction::StepUp)
        };
        let four: Vec<_> = (0..4).map(|i| paid(i, 1_000, false)).collect();
        assert!(!past_limit(&psd2, &four, &pay(10, 1_000)), "the fifth");
        let five: Vec<_> = (0..5).map(|i| paid(i, 1_000, false)).collect();
        assert!(past_limit(&psd2, &five, &pay(10, 1_000)), "the sixth");
        let mut reset = five.clone();
        reset.push(paid(6, 9_000, true));
        assert!(
            !past_limit(&psd2, &reset, &pay(10, 1_000)),
            "after a strong one"
        );
        assert!(past_limit(&psd2, &four, &pay(10, 11_001)), "past EUR 150");
        let mut dollars = four.clone();
        dollars[0].currency = "USD".into();
        dollars[0].amount_minor = 100_000;
        assert!(
            !past_limit(&psd2, &dollars, &pay(10, 10_000)),
            "other currency"
        );
    }

    #[test]
    fn windows_slide() {
        let daily = VelocityRule {
            max_approvals: Some(2),
            ..rule(VelocityAction::Refuse)
        };
        let history = [paid(0, 1, false), paid(10, 1, false)];
        assert!(past_limit(&daily, &history, &pay(20, 1)));
        assert!(
            !past_limit(&daily, &history, &pay(86_400, 1)),
            "the first left"
        );
    }

    #[test]
    fn actions_combine() {
        let rules = vec![
            VelocityRule {
                name: "a".into(),
                max_approvals: Some(1),
                ..rule(VelocityAction::Alert)
            },
            VelocityRule {
                name: "s".into(),
                max_approvals: Some(1),
                step_up_factors: vec![Factor::ActiveLiveness, Factor::Voice],
                ..rule(VelocityAction::StepUp)
            },
            VelocityRule {
                name: "t".into(),
                per: VelocityScope::Terminal,
                max_approvals: Some(1),
                ..rule(VelocityAction::Refuse)
            },
        ];
        let one = [paid(0, 1, false)];
        let v = velocity(&rules, &one, &[], &pay(1, 1));
        assert_eq!(v.alerts, ["a"]);
        assert_eq!(v.step_up, [Factor::Voice, Factor::ActiveLiveness]);
        assert_eq!(v.refused_by, None, "the terminal's history is empty");
        let v = velocity(&rules, &[], &one, &pay(1, 1));
        assert_eq!(v.refused_by.as_deref(), Some("t"));
        assert!(v.alerts.is_empty());
    }

    fn approvals() -> impl Strategy<Value = Vec<Approval>> {
        proptest::collection::vec((0i64..200_000, 0u64..20_000, any::<bool>()), 0..40).prop_map(
            |mut raw| {
                raw.sort();
                raw.into_iter()
                    .map(|(at, amount, strong)| Approval {
                        at_ms: at * S,
                        amount_minor: amount,
                        currency: "EUR".into(),
                        strong,
                    })
                    .collect()
            },
        )
    }

    fn any_rule() -> impl Strategy<Value = VelocityRule> {
        (
            proptest::option::of(1u32..30),
            proptest::option::of(1u64..200_000),
            proptest::option::of(1u32..10),
            proptest::option::of(1u64..50_000),
            60u64..200_000,
        )
            .prop_map(
                |(count, amount, since, since_amount, window)| VelocityRule {
                    max_approvals: count,
                    max_amount_minor: amount,
                    max_approvals_since_strong: since,
                    max_amount_since_strong_minor: since_amount,
                    window_seconds: window,
                    ..rule(VelocityAction::Refuse)
                },
            )
    }

    proptest! {
        /// One more earlier weak payment never lifts a limit; a larger payment never does.
        #[test]
        fn more_history_or_a_larger_amount_never_relaxes(
            rule in any_rule(),
            history in approvals(),
            extra_at in 0i64..200_000,
            extra_amount in 0u64..20_000,
            amount in 0u64..20_000,
            more in 0u64..20_000,
        ) {
            let payment = pay(200_001, amount);
            let before = past_limit(&rule, &history, &payment);
            let mut longer = history.clone();
            // Before the last strong payment it would not count since it; after it, it adds.
            let after_strong = history.iter().rposition(|a| a.strong).map_or(0, |i| history[i].at_ms / S + 1);
            let at = extra_at.max(after_strong);
            longer.push(paid(at, extra_amount, false));
            longer.sort_by_key(|a| a.at_ms);
            if longer.iter().rposition(|a| a.strong) == history.iter().rposition(|a| a.strong) {
                prop_assert!(!before || past_limit(&rule, &longer, &payment));
            }
            prop_assert!(!before || past_limit(&rule, &history, &pay(200_001, amount + more)));
        }

        /// A rule without limits that bind is never past them: an empty history and a zero
        /// amount pass any rule whose limits are at least 1.
        #[test]
        fn a_first_small_payment_passes(rule in any_rule()) {
            prop_assert!(!past_limit(&rule, &[], &pay(0, 0)));
        }

        /// Alerts never change whether a payment is refused or stepped up.
        #[test]
        fn alerts_only_alert(rule in any_rule(), history in approvals(), amount in 0u64..20_000) {
            let alert = VelocityRule { action: VelocityAction::Alert, ..rule };
            let v = velocity(&[alert], &history, &history, &pay(200_001, amount));
            prop_assert!(v.refused_by.is_none() && v.step_up.is_empty());
        }

        /// A lockout never outlasts `lockout` after the last failure, and never exists
        /// without `max` failures in the history.
        #[test]
        fn lockouts_are_bounded(raw in proptest::collection::vec((0i64..1_000, any::<bool>()), 0..30), now in 0i64..2_000) {
            let mut raw = raw;
            raw.sort();
            let history: Vec<Attempt> = raw.iter().map(|(at, failed)| Attempt { at_ms: at * S, failed: *failed }).collect();
            let failures = history.iter().filter(|a| a.failed).count();
            if let Some(remaining) = lock(&history, now) {
                prop_assert!(failures >= 3);
                let last = history.iter().filter(|a| a.failed).map(|a| a.at_ms).max().unwrap();
                prop_assert!(now * S + remaining.as_millis() as i64 <= last + 300 * S);
            }
        }
    }
}
