//! `POST /transactions.xml`: the synchronous checks answered to the caller, then the
//! backend's asynchronous report job, run at once. Job errors are never answered:
//! they go to the service's error log and discard the whole batch.

use chrono::{DateTime, Utc};

use crate::auth::{provider_key_error, provider_key_from_token};
use crate::errors::BackendError;
use crate::extensions::Extensions;
use crate::model::{Registry, ServiceModel};
use crate::params::{Params, Value};
use crate::request_info::ContextInfo;
use crate::store::Store;
use crate::timestamp::{OutOfRange, check_window, parse_to_utc};
use crate::usage::{ProcessedUsage, process_usage, without_zeros};

/// The media types the report endpoint accepts (besides none at all).
pub(crate) fn content_type_allowed(media_type: Option<&str>) -> bool {
    match media_type {
        None => true,
        Some(t) => {
            t.is_empty() || t == "application/x-www-form-urlencoded" || t == "multipart/form-data"
        }
    }
}

/// A transaction that passed the synchronous filter.
struct Pending<'a> {
    tx: &'a Value,
    /// The usage without `"0"` entries (absent when the transaction has none).
    usage: Option<UsageInput<'a>>,
}

enum UsageInput<'a> {
    Hash(Params),
    Other(&'a Value),
}

/// What happened to an accepted report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReportOutcome {
    /// Transactions in the request.
    pub received: usize,
    /// Transactions applied to the counters.
    pub applied: usize,
    /// Transactions discarded by a report-time error.
    pub discarded: usize,
}

/// Runs a report. `Err` is an error answered to the caller; `Ok` means 202.
pub(crate) fn report_call(
    params: &Params,
    media_type: Option<&str>,
    ext: &Extensions,
    reg: &Registry,
    store: &mut Store,
    now: DateTime<Utc>,
) -> Result<ReportOutcome, BackendError> {
    if !content_type_allowed(media_type) {
        return Err(BackendError::content_type_invalid(media_type.unwrap_or("")));
    }
    // Credentials come before the encoding check: missing credentials win.
    let token = params.get("service_token");
    let service_id = params.get("service_id").and_then(|v| match v {
        Value::Nil => None,
        other => Some(other.display()),
    });
    let provider_key = match params.get("provider_key") {
        Some(v) if !matches!(v, Value::Nil) => {
            if v.is_blank() {
                return Err(provider_key_error(token, service_id.as_deref()));
            }
            v.display()
        }
        _ => provider_key_from_token(reg, token, service_id.as_deref())
            .map(str::to_string)
            .ok_or_else(|| provider_key_error(token, service_id.as_deref()))?,
    };
    if !params.is_valid_utf8() {
        return Err(BackendError::not_valid_data());
    }
    let transactions = match params.get("transactions") {
        None => return Err(BackendError::transactions_is_blank()),
        Some(v) if v.is_blank() => return Err(BackendError::transactions_is_blank()),
        Some(Value::Hash(h)) => h,
        Some(_) => return Err(BackendError::transactions_format_invalid()),
    };
    if transactions.iter().any(|(_, t)| matches!(t, Value::Nil)) {
        return Err(BackendError::transactions_has_nil_transaction());
    }
    if transactions.iter().any(|(_, t)| {
        t.as_hash()
            .and_then(|h| h.get("user_id"))
            .is_some_and(|u| !matches!(u, Value::Nil))
    }) {
        return Err(BackendError::end_users_no_longer_supported());
    }
    let svc_idx = reg.load_with_provider_key(service_id.as_deref(), &provider_key)?;

    // Transactions whose usage is all "0" are dropped before queueing.
    let mut pending = Vec::with_capacity(transactions.len());
    for (_, tx) in transactions.iter() {
        let usage = match tx.as_hash().and_then(|h| h.get("usage")) {
            None | Some(Value::Nil) => None,
            Some(Value::Hash(u)) => {
                let filtered = without_zeros(u);
                if filtered.is_empty() {
                    continue;
                }
                Some(UsageInput::Hash(filtered))
            }
            Some(Value::Array(a)) if a.is_empty() => continue,
            // The backend fails with an internal error on a string usage.
            Some(Value::Str(_)) => return Err(BackendError::internal()),
            Some(other) => Some(UsageInput::Other(other)),
        };
        pending.push(Pending { tx, usage });
    }
    let received = transactions.len();
    if pending.is_empty() {
        return Ok(ReportOutcome {
            received,
            applied: 0,
            discarded: 0,
        });
    }
    let svc = &reg.services[svc_idx];
    match run_job(svc, &pending, ext.flat_usage, now) {
        Ok(batch) => {
            for (app, usage, ts, code) in &batch {
                store.apply(svc_idx, *app, usage, *ts);
                if let Some(code) = code {
                    store.log_response_code(svc_idx, *app, *code);
                }
            }
            Ok(ReportOutcome {
                received,
                applied: pending.len(),
                discarded: 0,
            })
        }
        Err(e) => {
            tracing::debug!(service_id = %svc.id, code = e.code, "report batch discarded");
            store.log_error(svc_idx, e.code, &e.message, ContextInfo::default(), now);
            Ok(ReportOutcome {
                received,
                applied: 0,
                discarded: pending.len(),
            })
        }
    }
}

/// `Application.extract_id!` on the raw (not normalized) transaction fields.
fn extract_app(svc: &ServiceModel, tx: &Value) -> Result<usize, BackendError> {
    let field = |name: &str| {
        tx.as_hash()
            .and_then(|h| h.get(name))
            .filter(|v| !matches!(v, Value::Nil))
    };
    let app_id = match (field("app_id"), field("user_key")) {
        (Some(_), Some(_)) => return Err(BackendError::authentication_error()),
        (Some(id), None) => id.display(),
        (None, Some(key)) => {
            let key = key.display();
            match svc.user_key_index.get(&key) {
                Some(&i) => return Ok(i),
                None => return Err(BackendError::user_key_invalid(Some(&key))),
            }
        }
        (None, None) => return Err(BackendError::application_not_found(None)),
    };
    match field("app_id")
        .and_then(Value::as_str)
        .and_then(|id| svc.app_index.get(id))
    {
        Some(&i) => Ok(i),
        None => Err(BackendError::application_not_found(Some(&app_id))),
    }
}

/// One transaction of a report job: application, usage, time and `log[code]`.
type JobItem = (usize, ProcessedUsage, DateTime<Utc>, Option<u16>);

/// The report job: applications first (in order), then usages (grouped by
/// application), then timestamps. The first error discards everything.
fn run_job(
    svc: &ServiceModel,
    pending: &[Pending<'_>],
    flat: bool,
    now: DateTime<Utc>,
) -> Result<Vec<JobItem>, BackendError> {
    let mut groups: Vec<(usize, Vec<&Pending<'_>>)> = Vec::new();
    for p in pending {
        let app = extract_app(svc, p.tx)?;
        match groups.iter_mut().find(|(a, _)| *a == app) {
            Some((_, members)) => members.push(p),
            None => groups.push((app, vec![p])),
        }
    }
    let mut composed = Vec::new();
    for (app, members) in &groups {
        for p in members {
            let usage = match &p.usage {
                None => continue,
                Some(UsageInput::Hash(u)) => process_usage(svc, u, flat)?,
                Some(UsageInput::Other(v)) => {
                    let name = match v {
                        Value::Array(items) => {
                            items.first().map(Value::display).unwrap_or_default()
                        }
                        other => other.display(),
                    };
                    return Err(BackendError::usage_value_invalid(&name, None));
                }
            };
            composed.push((*app, usage, p.tx));
        }
    }
    let now_secs = now.timestamp();
    let mut batch = Vec::with_capacity(composed.len());
    for (app, usage, tx) in composed {
        let raw_ts = tx.as_hash().and_then(|h| h.get("timestamp"));
        let secs = raw_ts
            .and_then(Value::as_str)
            .and_then(parse_to_utc)
            .unwrap_or(now_secs);
        match check_window(secs, now_secs) {
            Err(OutOfRange::TooOld) => return Err(BackendError::transaction_timestamp_too_old()),
            Err(OutOfRange::TooNew) => return Err(BackendError::transaction_timestamp_too_new()),
            Ok(()) => {}
        }
        let ts = if secs == now_secs {
            now
        } else {
            DateTime::from_timestamp(secs, 0).unwrap_or(now)
        };
        let code = crate::store::response_code(tx.as_hash().and_then(|h| h.get("log")));
        batch.push((app, usage, ts, code));
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert!(content_type_allowed(None));
        assert!(content_type_allowed(Some("")));
        assert!(content_type_allowed(Some(
            "application/x-www-form-urlencoded"
        )));
        assert!(content_type_allowed(Some("multipart/form-data")));
        assert!(!content_type_allowed(Some("application/json")));
    }
}
