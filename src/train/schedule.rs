//! The learning-rate schedule of TIGER's training (Hugging Face's
//! `get_cosine_schedule_with_warmup`): linear warm-up from 0 over the first `warmup` steps,
//! then half a cosine from the peak down to 0 at `total` steps.

/// Learning rate at optimizer step `step` (0-based) of a run planned for `total` steps.
pub fn lr_at(step: usize, total: usize, warmup: usize, peak: f64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1);
    let progress = ((step - warmup) as f64 / span as f64).min(1.0);
    peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// Warm-up steps for a run of `total` steps: `fraction` of them, rounded up.
pub fn warmup_steps(total: usize, fraction: f64) -> usize {
    (total as f64 * fraction).ceil() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_linearly_then_decays_to_zero() {
        let (total, warmup, peak) = (1000, 10, 5e-4);
        assert!((lr_at(0, total, warmup, peak) - peak / 10.0).abs() < 1e-12);
        assert!((lr_at(9, total, warmup, peak) - peak).abs() < 1e-12);
        assert!((lr_at(10, total, warmup, peak) - peak).abs() < 1e-12);
        let mid = lr_at(10 + 495, total, warmup, peak);
        assert!((mid - peak / 2.0).abs() < 1e-9, "{mid}");
        assert!(lr_at(999, total, warmup, peak) < 1e-8);
        // Monotone after the warm-up.
        let lrs: Vec<f64> = (10..total).map(|s| lr_at(s, total, warmup, peak)).collect();
        assert!(lrs.windows(2).all(|w| w[1] <= w[0]));
        assert_eq!(warmup_steps(1000, 0.01), 10);
        assert_eq!(warmup_steps(50, 0.01), 1);
        assert_eq!(warmup_steps(50, 0.0), 0);
        assert!((lr_at(0, 50, 0, peak) - peak).abs() < 1e-12);
    }
}
