//! The services, metrics, plans and applications the emulator serves, resolved from
//! the config into indexed form. Fixed once the emulator runs.

use std::collections::{HashMap, HashSet};

use crate::config::{EmulatedService, EmulatorConfig};
use crate::errors::{BackendError, EmulatorError};
use crate::period::LimitPeriod;
use crate::ruby::ruby_to_i;

#[derive(Clone, Debug)]
pub(crate) struct MetricModel {
    pub name: String,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    /// Children, then the descendants of each child (the backend's order).
    pub descendants: Vec<usize>,
    /// Parent, grandparent, ...
    pub ancestors: Vec<usize>,
}

#[derive(Clone, Debug)]
pub(crate) struct LimitModel {
    pub metric: usize,
    pub period: LimitPeriod,
    pub max: i64,
}

#[derive(Clone, Debug)]
pub(crate) struct PlanModel {
    pub name: String,
    /// Sorted by metric (config order), then period, longest first.
    pub limits: Vec<LimitModel>,
}

#[derive(Clone, Debug)]
pub(crate) struct AppModel {
    pub id: String,
    pub plan: Option<usize>,
    pub active: bool,
    pub keys: Vec<String>,
    pub referrer_filters: Vec<String>,
    pub redirect_url: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct ServiceModel {
    pub id: String,
    pub provider_key: String,
    pub backend_version: String,
    pub active: bool,
    pub referrer_filters_required: bool,
    pub metrics: Vec<MetricModel>,
    pub metric_index: HashMap<String, usize>,
    pub plans: Vec<PlanModel>,
    pub apps: Vec<AppModel>,
    pub app_index: HashMap<String, usize>,
    pub user_key_index: HashMap<String, usize>,
}

impl ServiceModel {
    /// `backend_version.to_i == 1`.
    pub(crate) fn is_v1(&self) -> bool {
        ruby_to_i(&self.backend_version) == 1
    }

    pub(crate) fn is_oauth(&self) -> bool {
        self.backend_version == "oauth"
    }

    pub(crate) fn metric(&self, name: &str) -> Option<usize> {
        self.metric_index.get(name).copied()
    }

    pub(crate) fn limits_of(&self, app: &AppModel) -> &[LimitModel] {
        app.plan.map_or(&[], |p| self.plans[p].limits.as_slice())
    }

    pub(crate) fn plan_name(&self, app: &AppModel) -> &str {
        app.plan.map_or("", |p| self.plans[p].name.as_str())
    }

    /// Names of the direct children, space separated (the `hierarchy` extension).
    pub(crate) fn children_names(&self, metric: usize) -> String {
        self.metrics[metric]
            .children
            .iter()
            .map(|&c| self.metrics[c].name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Everything the emulator knows about services.
#[derive(Clone, Debug, Default)]
pub(crate) struct Registry {
    pub services: Vec<ServiceModel>,
    pub service_index: HashMap<String, usize>,
    pub default_by_provider: HashMap<String, usize>,
    pub tokens: HashSet<(String, String)>,
}

impl Registry {
    /// Builds the registry, skipping (and describing) whatever is inconsistent.
    pub(crate) fn build(config: &EmulatorConfig) -> (Registry, Vec<String>) {
        let mut problems = Vec::new();
        let mut reg = Registry::default();
        let mut explicit_default: HashMap<String, usize> = HashMap::new();
        let mut first_of_provider: HashMap<String, usize> = HashMap::new();

        for sc in &config.services {
            if sc.id.is_empty() {
                problems.push("a service has an empty id".to_string());
                continue;
            }
            if reg.service_index.contains_key(&sc.id) {
                problems.push(format!("service id {:?} is used twice", sc.id));
                continue;
            }
            let sid = &sc.id;
            let provider_key = sc
                .provider_key
                .clone()
                .filter(|k| !k.trim().is_empty())
                .unwrap_or_else(|| format!("emulator-provider-{sid}"));
            let (metrics, metric_index) = build_metrics(sc, &mut problems);
            let (plans, plan_index) = build_plans(sc, &metric_index, &mut problems);
            let (apps, app_index, user_key_index) = build_apps(sc, &plan_index, &mut problems);

            let idx = reg.services.len();
            for token in sc.service_token.iter().chain(sc.service_tokens.iter()) {
                reg.tokens.insert((token.clone(), sid.clone()));
            }
            match sc.default {
                Some(true) => {
                    if let Some(&other) = explicit_default.get(&provider_key) {
                        problems.push(format!(
                            "services {} and {sid} are both the default service of a provider key",
                            reg.services[other].id
                        ));
                    } else {
                        explicit_default.insert(provider_key.clone(), idx);
                    }
                }
                // `default: false` never makes a service its provider's default
                Some(false) => {}
                None => {
                    first_of_provider.entry(provider_key.clone()).or_insert(idx);
                }
            }
            reg.service_index.insert(sid.clone(), idx);
            reg.services.push(ServiceModel {
                id: sid.clone(),
                provider_key,
                backend_version: sc.backend_version.clone(),
                active: sc.state.as_deref().is_none_or(|s| s == "active"),
                referrer_filters_required: sc.referrer_filters_required,
                metrics,
                metric_index,
                plans,
                apps,
                app_index,
                user_key_index,
            });
        }
        reg.default_by_provider = first_of_provider;
        reg.default_by_provider.extend(explicit_default);
        (reg, problems)
    }

    pub(crate) fn service_by_id(&self, id: &str) -> Option<usize> {
        self.service_index.get(id).copied()
    }

    /// `ServiceToken.exists?` followed by `Service.provider_key_for`.
    pub(crate) fn provider_key_for_token(&self, token: &str, service_id: &str) -> Option<&str> {
        if !self
            .tokens
            .contains(&(token.to_string(), service_id.to_string()))
        {
            return None;
        }
        self.service_by_id(service_id)
            .map(|i| self.services[i].provider_key.as_str())
    }

    /// `Service.load_with_provider_key!`.
    pub(crate) fn load_with_provider_key(
        &self,
        id: Option<&str>,
        provider_key: &str,
    ) -> Result<usize, BackendError> {
        let id = match id.filter(|i| !i.is_empty()) {
            Some(id) => id.to_string(),
            None => match self.default_by_provider.get(provider_key) {
                Some(&i) => self.services[i].id.clone(),
                None => {
                    return Err(BackendError::provider_key_invalid_or_service_missing(
                        provider_key,
                    ));
                }
            },
        };
        // The backend first tries the part after the last '-' (legacy "pk-id" ids).
        let last = id.split('-').rev().find(|s| !s.is_empty());
        let service = last
            .and_then(|l| self.service_by_id(l))
            .or_else(|| self.service_by_id(&id))
            .ok_or_else(|| BackendError::service_id_invalid(&id))?;
        if self.services[service].provider_key != provider_key {
            if !self.default_by_provider.contains_key(provider_key) {
                return Err(BackendError::provider_key_invalid(provider_key));
            }
            return Err(BackendError::service_id_invalid(&id));
        }
        Ok(service)
    }

    /// The service whose error log gets an error raised on an auth endpoint (the
    /// listener's `service_id` helper), if it can be worked out.
    pub(crate) fn service_for_error_log(
        &self,
        service_id: Option<&str>,
        provider_key: Option<&str>,
    ) -> Option<usize> {
        let pk = provider_key?;
        match service_id.filter(|s| !s.is_empty()) {
            None => self.default_by_provider.get(pk).copied(),
            Some(id) => self
                .service_by_id(id)
                .filter(|&i| self.services[i].provider_key == pk),
        }
    }
}

fn build_metrics(
    sc: &EmulatedService,
    problems: &mut Vec<String>,
) -> (Vec<MetricModel>, HashMap<String, usize>) {
    let sid = &sc.id;
    let mut metrics: Vec<MetricModel> = Vec::new();
    let mut index = HashMap::new();
    for m in &sc.metrics {
        if m.name.is_empty() || index.contains_key(&m.name) {
            problems.push(format!(
                "service {sid}: metric {:?} is empty or defined twice",
                m.name
            ));
            continue;
        }
        index.insert(m.name.clone(), metrics.len());
        metrics.push(MetricModel {
            name: m.name.clone(),
            parent: None,
            children: Vec::new(),
            descendants: Vec::new(),
            ancestors: Vec::new(),
        });
    }
    for m in &sc.metrics {
        let (Some(parent), Some(&child)) = (&m.parent, index.get(&m.name)) else {
            continue;
        };
        match index.get(parent) {
            Some(&p) if p != child => metrics[child].parent = Some(p),
            _ => problems.push(format!(
                "service {sid}: metric {:?} has an unknown parent {parent:?}",
                m.name
            )),
        }
    }
    // Break cycles: a walk up longer than the number of metrics is one.
    for i in 0..metrics.len() {
        let mut cur = metrics[i].parent;
        let mut steps = 0;
        while let Some(p) = cur {
            steps += 1;
            if p == i || steps > metrics.len() {
                problems.push(format!(
                    "service {sid}: metric {:?} is its own ancestor",
                    metrics[i].name
                ));
                metrics[i].parent = None;
                break;
            }
            cur = metrics[p].parent;
        }
    }
    for i in 0..metrics.len() {
        if let Some(p) = metrics[i].parent {
            metrics[p].children.push(i);
        }
    }
    for i in 0..metrics.len() {
        let mut ancestors = Vec::new();
        let mut cur = metrics[i].parent;
        while let Some(p) = cur {
            ancestors.push(p);
            cur = metrics[p].parent;
        }
        metrics[i].ancestors = ancestors;
        metrics[i].descendants = descendants(&metrics, i);
    }
    (metrics, index)
}

fn build_plans(
    sc: &EmulatedService,
    metric_index: &HashMap<String, usize>,
    problems: &mut Vec<String>,
) -> (Vec<PlanModel>, HashMap<String, usize>) {
    let sid = &sc.id;
    let mut plans = Vec::new();
    let mut index = HashMap::new();
    for pc in &sc.plans {
        if index.contains_key(&pc.name) {
            problems.push(format!("service {sid}: plan {:?} defined twice", pc.name));
            continue;
        }
        let mut limits: Vec<LimitModel> = Vec::new();
        for lc in &pc.limits {
            let Some(&metric) = metric_index.get(&lc.metric) else {
                problems.push(format!(
                    "service {sid}: plan {:?} limits unknown metric {:?}",
                    pc.name, lc.metric
                ));
                continue;
            };
            if limits
                .iter()
                .any(|l| l.metric == metric && l.period == lc.period)
            {
                problems.push(format!(
                    "service {sid}: plan {:?} has two {} limits on {:?}",
                    pc.name, lc.period, lc.metric
                ));
                continue;
            }
            limits.push(LimitModel {
                metric,
                period: lc.period,
                max: lc.value,
            });
        }
        // The backend lists limits by metric, then period from eternity to minute.
        limits.sort_by_key(|l| (l.metric, std::cmp::Reverse(l.period)));
        index.insert(pc.name.clone(), plans.len());
        plans.push(PlanModel {
            name: pc.name.clone(),
            limits,
        });
    }
    (plans, index)
}

type AppIndexes = (
    Vec<AppModel>,
    HashMap<String, usize>,
    HashMap<String, usize>,
);

fn build_apps(
    sc: &EmulatedService,
    plan_index: &HashMap<String, usize>,
    problems: &mut Vec<String>,
) -> AppIndexes {
    let sid = &sc.id;
    let mut apps: Vec<AppModel> = Vec::new();
    let mut app_index = HashMap::new();
    let mut user_key_index = HashMap::new();
    let explicit_ids: HashSet<&str> = sc
        .applications
        .iter()
        .filter_map(|a| a.app_id.as_deref())
        .collect();
    let mut generated = 0usize;
    for ac in &sc.applications {
        let plan = match &ac.plan {
            None => None,
            Some(name) => match plan_index.get(name) {
                Some(&p) => Some(p),
                None => {
                    problems.push(format!(
                        "service {sid}: application uses unknown plan {name:?}"
                    ));
                    continue;
                }
            },
        };
        let id = match &ac.app_id {
            Some(id) if !id.trim().is_empty() => id.clone(),
            Some(_) => {
                problems.push(format!("service {sid}: an application has a blank id"));
                continue;
            }
            None => loop {
                generated += 1;
                let candidate = format!("app-{generated}");
                if !explicit_ids.contains(candidate.as_str()) {
                    break candidate;
                }
            },
        };
        if app_index.contains_key(&id) {
            problems.push(format!("service {sid}: application id {id:?} used twice"));
            continue;
        }
        if let Some(uk) = &ac.user_key {
            if uk.trim().is_empty() || user_key_index.contains_key(uk) {
                problems.push(format!(
                    "service {sid}: user_key of application {id:?} is blank or used twice"
                ));
                continue;
            }
            user_key_index.insert(uk.clone(), apps.len());
        }
        app_index.insert(id.clone(), apps.len());
        apps.push(AppModel {
            id,
            plan,
            active: ac.state.as_deref().is_none_or(|s| s == "active"),
            keys: ac.app_keys.clone(),
            referrer_filters: ac.referrer_filters.clone(),
            redirect_url: ac.redirect_url.clone(),
        });
    }
    (apps, app_index, user_key_index)
}

fn descendants(metrics: &[MetricModel], i: usize) -> Vec<usize> {
    let mut out = metrics[i].children.clone();
    for &c in &metrics[i].children {
        out.extend(descendants(metrics, c));
    }
    out
}

// The check lives here, next to the registry it builds, so that `config`
// (the file format) does not depend on the model built from it.
impl EmulatorConfig {
    /// Checks the references (plans, metrics, parents) and uniqueness rules.
    pub fn validate(&self) -> Result<(), EmulatorError> {
        let (_, mut problems) = Registry::build(self);
        for service in &self.services {
            if let Some(proxy) = &service.proxy {
                problems.extend(crate::config::proxy_problems(service, proxy));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(EmulatorError::Invalid(problems.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ApplicationConfig, PlanConfig};

    fn registry() -> Registry {
        let config = EmulatorConfig {
            admin_access_token: None,
            services: vec![
                EmulatedService::new("1")
                    .provider_key("pk")
                    .metric("hits")
                    .child_metric("a", "hits")
                    .child_metric("b", "hits")
                    .child_metric("a1", "a")
                    .plan(
                        PlanConfig::new("p")
                            .limit("hits", LimitPeriod::Minute, 1)
                            .limit("hits", LimitPeriod::Eternity, 1)
                            .limit("a", LimitPeriod::Day, 1),
                    )
                    .application(ApplicationConfig::with_user_key("p", "uk")),
                EmulatedService::new("2").provider_key("pk"),
                EmulatedService::new("3")
                    .provider_key("other")
                    .default_service(false),
            ],
        };
        let (reg, problems) = Registry::build(&config);
        assert!(problems.is_empty(), "{problems:?}");
        reg
    }

    #[test]
    fn hierarchy_orders() {
        let reg = registry();
        let s = &reg.services[0];
        let names = |v: &[usize]| {
            v.iter()
                .map(|&i| s.metrics[i].name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&s.metrics[0].descendants), vec!["a", "b", "a1"]);
        assert_eq!(names(&s.metrics[3].ancestors), vec!["a", "hits"]);
        assert_eq!(s.children_names(0), "a b");
        let periods: Vec<LimitPeriod> = s.plans[0].limits.iter().map(|l| l.period).collect();
        assert_eq!(
            periods,
            vec![LimitPeriod::Eternity, LimitPeriod::Minute, LimitPeriod::Day]
        );
        assert_eq!(s.apps[0].id, "app-1");
    }

    #[test]
    fn service_resolution() {
        let reg = registry();
        assert_eq!(reg.load_with_provider_key(None, "pk"), Ok(0));
        assert_eq!(reg.load_with_provider_key(Some("2"), "pk"), Ok(1));
        assert_eq!(reg.load_with_provider_key(Some("x-2"), "pk"), Ok(1));
        assert_eq!(
            reg.load_with_provider_key(None, "nope").unwrap_err().code,
            "provider_key_invalid_or_service_missing"
        );
        assert_eq!(
            reg.load_with_provider_key(Some("9"), "pk")
                .unwrap_err()
                .code,
            "service_id_invalid"
        );
        assert_eq!(
            reg.load_with_provider_key(Some("1"), "nope")
                .unwrap_err()
                .code,
            "provider_key_invalid"
        );
        assert_eq!(
            reg.load_with_provider_key(Some("3"), "pk")
                .unwrap_err()
                .code,
            "service_id_invalid"
        );
        assert_eq!(
            reg.load_with_provider_key(None, "other").unwrap_err().code,
            "provider_key_invalid_or_service_missing"
        );
    }
}
