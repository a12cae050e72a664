//! timex: the kernel clock discipline from `adjtimex(2)`.
// System calls (libc) without a safe std equivalent; each block says why it is sound.
#![allow(unsafe_code)]

use vigie_common::MetricSet;

use super::{no_args, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "timex",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Timex)),
    }
}

struct Timex;

const STA_NANO: i32 = 0x2000;
const TIME_ERROR: i32 = 5;
/// "scaled ppm" (16-bit fraction) to a ratio.
const PPM16: f64 = 65536.0 * 1_000_000.0;

impl Collector for Timex {
    fn update(&self, _ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        // SAFETY: modes = 0 only reads; the struct is plain data.
        let mut t: libc::timex = unsafe { std::mem::zeroed() };
        let state = unsafe { libc::adjtimex(&mut t) };
        if state == -1 {
            return Err(CollectError::Other(format!(
                "failed to retrieve adjtimex stats: {}",
                std::io::Error::last_os_error()
            )));
        }
        let sync = if state == TIME_ERROR { 0.0 } else { 1.0 };
        let div = if t.status & STA_NANO != 0 { 1e9 } else { 1e6 };
        let g = |out: &mut MetricSet, n: &str, h: &str, v: f64| out.gauge(n, h, &[], v);
        g(
            out,
            "node_timex_sync_status",
            "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
            sync,
        );
        g(
            out,
            "node_timex_offset_seconds",
            "Time offset in between local system and reference clock.",
            t.offset as f64 / div,
        );
        g(
            out,
            "node_timex_frequency_adjustment_ratio",
            "Local clock frequency adjustment.",
            1.0 + t.freq as f64 / PPM16,
        );
        g(
            out,
            "node_timex_maxerror_seconds",
            "Maximum error in seconds.",
            t.maxerror as f64 / 1e6,
        );
        g(
            out,
            "node_timex_estimated_error_seconds",
            "Estimated error in seconds.",
            t.esterror as f64 / 1e6,
        );
        g(
            out,
            "node_timex_status",
            "Value of the status array bits.",
            t.status as f64,
        );
        g(
            out,
            "node_timex_loop_time_constant",
            "Phase-locked loop time constant.",
            t.constant as f64,
        );
        g(
            out,
            "node_timex_tick_seconds",
            "Seconds between clock ticks.",
            t.tick as f64 / 1e6,
        );
        g(
            out,
            "node_timex_pps_frequency_hertz",
            "Pulse per second frequency.",
            t.ppsfreq as f64 / PPM16,
        );
        g(
            out,
            "node_timex_pps_jitter_seconds",
            "Pulse per second jitter.",
            t.jitter as f64 / div,
        );
        g(
            out,
            "node_timex_pps_shift_seconds",
            "Pulse per second interval duration.",
            t.shift as f64,
        );
        g(
            out,
            "node_timex_pps_stability_hertz",
            "Pulse per second stability, average of recent frequency changes.",
            t.stabil as f64 / PPM16,
        );
        g(
            out,
            "node_timex_tai_offset_seconds",
            "International Atomic Time (TAI) offset.",
            t.tai as f64,
        );
        let c = |out: &mut MetricSet, n: &str, h: &str, v: f64| out.counter(n, h, &[], v);
        c(
            out,
            "node_timex_pps_jitter_total",
            "Pulse per second count of jitter limit exceeded events.",
            t.jitcnt as f64,
        );
        c(
            out,
            "node_timex_pps_calibration_total",
            "Pulse per second count of calibration intervals.",
            t.calcnt as f64,
        );
        c(
            out,
            "node_timex_pps_error_total",
            "Pulse per second count of calibration errors.",
            t.errcnt as f64,
        );
        c(
            out,
            "node_timex_pps_stability_exceeded_total",
            "Pulse per second count of stability limit exceeded events.",
            t.stbcnt as f64,
        );
        Ok(())
    }
}
