//! `Retry-After` and `RetryInfo` conversions (spec §"Throttling").

use std::time::{Duration, SystemTime};

use opamp_proto::RetryInfo;
use opamp_transport::codec::retry_after::{
    MIN_RECOMMENDED_RETRY_INTERVAL, format_retry_after, parse_retry_after, retry_after_from_nanos,
    retry_after_to_nanos,
};
use proptest::prelude::*;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn date_from_a_recorded_response() {
    // The Date header of tests/vectors/http/001-response.headers.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/http/001-response.headers"
    ))
    .unwrap();
    let date = text.lines().find_map(|l| l.strip_prefix("Date: ")).unwrap();
    let when = httpdate::parse_http_date(date).unwrap();
    assert_eq!(
        parse_retry_after(date, when - Duration::from_secs(45)),
        Some(Duration::from_secs(45))
    );
    assert_eq!(
        parse_retry_after(date, when + Duration::from_secs(45)),
        Some(Duration::ZERO)
    );
}

#[test]
fn sub_second_now_is_handled() {
    // The date has whole seconds; `now` may not.
    let now = at(1_000_000) + Duration::from_millis(250);
    let date = httpdate::fmt_http_date(at(1_000_010));
    assert_eq!(
        parse_retry_after(&date, now),
        Some(Duration::from_millis(9_750))
    );
}

#[test]
fn formatted_values_parse_back() {
    let now = at(0);
    for wait in [
        Duration::ZERO,
        MIN_RECOMMENDED_RETRY_INTERVAL,
        Duration::from_secs(86_400),
    ] {
        let text = format_retry_after(wait);
        assert_eq!(parse_retry_after(&text, now), Some(wait));
    }
    assert_eq!(MIN_RECOMMENDED_RETRY_INTERVAL, Duration::from_secs(30));
}

#[test]
fn retry_info_nanoseconds() {
    let info = RetryInfo {
        retry_after_nanoseconds: 2_500_000_000,
    };
    let wait = retry_after_from_nanos(info.retry_after_nanoseconds);
    assert_eq!(wait, Duration::from_millis(2500));
    assert_eq!(retry_after_to_nanos(wait), info.retry_after_nanoseconds);
    // As an HTTP header the same wait rounds up to whole seconds.
    assert_eq!(format_retry_after(wait), "3");
}

#[test]
fn garbage_is_none() {
    for bad in [
        "",
        "soon",
        "-5",
        "5 seconds",
        "1e3",
        "Sun, 06 Nov 1994 08:49:37 PST",
        "Sun, 32 Nov 1994 08:49:37 GMT",
        "\u{0}",
    ] {
        assert_eq!(parse_retry_after(bad, at(0)), None, "{bad:?}");
    }
}

proptest! {
    #[test]
    fn delta_seconds_round_trip(secs in 0u64..=u64::MAX, now in 0u64..4_000_000_000) {
        let text = format_retry_after(Duration::from_secs(secs));
        prop_assert_eq!(text.clone(), secs.to_string());
        prop_assert_eq!(parse_retry_after(&text, at(now)), Some(Duration::from_secs(secs)));
    }

    #[test]
    fn formatting_never_rounds_down(nanos: u64) {
        let wait = Duration::from_nanos(nanos);
        let secs: u64 = format_retry_after(wait).parse().unwrap();
        prop_assert!(Duration::from_secs(secs) >= wait);
        prop_assert!(Duration::from_secs(secs) < wait + Duration::from_secs(1));
        prop_assert_eq!(retry_after_to_nanos(retry_after_from_nanos(nanos)), nanos);
    }

    #[test]
    fn http_dates_give_the_difference(date in 0u64..253_402_300_799, now in 0u64..253_402_300_799) {
        // httpdate formats years up to 9999.
        let text = httpdate::fmt_http_date(at(date));
        let expected = Duration::from_secs(date.saturating_sub(now));
        prop_assert_eq!(parse_retry_after(&text, at(now)), Some(expected));
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,40}") {
        let _ = parse_retry_after(&text, at(1_700_000_000));
    }
}
