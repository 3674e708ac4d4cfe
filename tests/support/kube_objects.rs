//! The part of the Kubernetes API double that serves single named objects: coordination.k8s.io/v1
//! Leases and v1 ConfigMaps in a namespace, as the apiserver's generic registry serves them
//! (k8s.io/apiserver `pkg/endpoints/handlers`, structured-merge-diff for field ownership):
//! - `GET .../{name}`: the object, or `404 NotFound` (`leases.coordination.k8s.io "x" not found`);
//! - `POST` on the collection creates (`409 AlreadyExists` when the name is taken);
//! - `PUT .../{name}` replaces; a `metadata.resourceVersion` in the body must be the current
//!   one, else `409 Conflict` ("the object has been modified"); these kinds never create on PUT;
//! - `PATCH .../{name}` with `application/apply-patch+yaml` is a server-side apply: it needs a
//!   `fieldManager`, creates a missing object, holds a `metadata.resourceVersion` it carries as a
//!   precondition, and without `force=true` answers `409 Conflict`
//!   (`Apply failed with N conflict(s): conflict with "m": .spec.f`) when it would change a field
//!   another manager owns; `application/merge-patch+json` and
//!   `application/strategic-merge-patch+json` (the same for these kinds: maps of scalars) merge,
//!   `null` removing a field, and move ownership of every field they change to their manager;
//!   other media types are `415`;
//! - bodies are decoded into the kind's real type (k8s-openapi), so a field of the wrong type is
//!   `400 BadRequest`; `spec.leaseDurationSeconds` must be positive and ConfigMap keys valid
//!   (`422 Invalid`); every write that changes the object bumps `metadata.resourceVersion` and
//!   `metadata.managedFields` say who owns which field.

#![allow(clippy::result_large_err)] // a refusal is the response itself, as a handler returns it

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// A path below the object's root: `["spec", "holderIdentity"]`.
type FieldPath = Vec<String>;

/// One entry of `metadata.managedFields`: a manager, its operation, and the fields it owns.
#[derive(Clone, Debug)]
pub struct Managed {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: &'static str,
    pub fields: BTreeSet<FieldPath>,
    time: String,
}

#[derive(Clone, Debug)]
pub struct Single {
    pub object: Value,
    pub managed: Vec<Managed>,
}

/// The kinds served by name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Resource {
    Lease,
    ConfigMap,
}

impl Resource {
    fn plural(self) -> &'static str {
        match self {
            Resource::Lease => "leases",
            Resource::ConfigMap => "configmaps",
        }
    }

    /// How the apiserver names it in messages.
    fn qualified(self) -> &'static str {
        match self {
            Resource::Lease => "leases.coordination.k8s.io",
            Resource::ConfigMap => "configmaps",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Resource::Lease => "Lease",
            Resource::ConfigMap => "ConfigMap",
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Resource::Lease => "coordination.k8s.io/v1",
            Resource::ConfigMap => "v1",
        }
    }

    fn group(self) -> &'static str {
        match self {
            Resource::Lease => "coordination.k8s.io",
            Resource::ConfigMap => "",
        }
    }
}

/// `/apis/coordination.k8s.io/v1/namespaces/NS/leases[/NAME]` or
/// `/api/v1/namespaces/NS/configmaps[/NAME]`.
pub fn route(path: &str) -> Option<(Resource, String, Option<String>)> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (resource, rest) = match parts.as_slice() {
        ["apis", "coordination.k8s.io", "v1", "namespaces", rest @ ..] => (Resource::Lease, rest),
        ["api", "v1", "namespaces", rest @ ..] => (Resource::ConfigMap, rest),
        _ => return None,
    };
    match rest {
        [ns, plural] if *plural == resource.plural() => Some((resource, ns.to_string(), None)),
        [ns, plural, name] if *plural == resource.plural() && !name.is_empty() => {
            Some((resource, ns.to_string(), Some(name.to_string())))
        }
        _ => None,
    }
}

fn status(code: StatusCode, reason: &str, message: String, details: Value) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "details": details, "code": code.as_u16(),
    });
    (code, axum::Json(body)).into_response()
}

fn details(r: Resource, name: &str) -> Value {
    json!({"name": name, "group": r.group(), "kind": r.plural()})
}

fn not_found(r: Resource, name: &str) -> Response {
    let message = format!("{} \"{name}\" not found", r.qualified());
    status(StatusCode::NOT_FOUND, "NotFound", message, details(r, name))
}

fn bad_request(message: String) -> Response {
    status(StatusCode::BAD_REQUEST, "BadRequest", message, json!({}))
}

fn invalid(r: Resource, name: &str, causes: Vec<String>) -> Response {
    let message = format!("{} \"{name}\" is invalid: {}", r.kind(), causes.join(", "));
    status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message, details(r, name))
}

fn modified(r: Resource, name: &str) -> Response {
    let message = format!(
        "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
        r.qualified()
    );
    status(StatusCode::CONFLICT, "Conflict", message, details(r, name))
}

/// What the request asks, already read off the wire.
pub struct Ask<'a> {
    pub method: &'a str,
    pub content_type: &'a str,
    pub query: &'a std::collections::HashMap<String, String>,
    pub user_agent: &'a str,
    pub body: &'a [u8],
}

/// Serves one request on a single-object path; `rv` is the double's resourceVersion counter.
pub fn handle(
    store: &mut BTreeMap<(String, String, String), Single>,
    rv: &mut u64,
    (r, ns, name): (Resource, String, Option<String>),
    ask: Ask,
) -> Response {
    let key = |n: &str| (r.plural().to_string(), ns.clone(), n.to_string());
    let manager = ask.query.get("fieldManager").cloned().filter(|m| !m.is_empty());
    // The apiserver's default manager for a write without one: the User-Agent up to its '/'.
    let updater = manager.clone().unwrap_or_else(|| ask.user_agent.split('/').next().unwrap_or("").to_string());
    match (ask.method, name) {
        ("GET", None) => {
            let items: Vec<Value> = store
                .iter()
                .filter(|((p, n, _), _)| p == r.plural() && *n == ns)
                .map(|(_, s)| rendered(r, s))
                .collect();
            let list = json!({"kind": format!("{}List", r.kind()), "apiVersion": r.api_version(),
                "metadata": {"resourceVersion": rv.to_string()}, "items": items});
            axum::Json(list).into_response()
        }
        ("GET", Some(name)) => match store.get(&key(&name)) {
            Some(s) => axum::Json(rendered(r, s)).into_response(),
            None => not_found(r, &name),
        },
        ("POST", None) => {
            let body = match decode(r, ask.body, false) {
                Ok(b) => b,
                Err(e) => return e,
            };
            let Some(name) = body["metadata"]["name"].as_str().map(str::to_string) else {
                return invalid(r, "", vec!["metadata.name: Required value: name or generateName is required".into()]);
            };
            if let Err(e) = namespace_matches(&body, &ns) {
                return e;
            }
            if store.contains_key(&key(&name)) {
                let message = format!("{} \"{name}\" already exists", r.qualified());
                return status(StatusCode::CONFLICT, "AlreadyExists", message, details(r, &name));
            }
            if let Err(e) = validate(r, &name, &body) {
                return e;
            }
            let mut single = Single { object: Value::Object(Map::new()), managed: Vec::new() };
            write(&mut single, &body, &updater, rv, &ns, &name);
            let out = rendered(r, &single);
            store.insert(key(&name), single);
            (StatusCode::CREATED, axum::Json(out)).into_response()
        }
        ("PUT", Some(name)) => {
            let body = match decode(r, ask.body, false) {
                Ok(b) => b,
                Err(e) => return e,
            };
            if let Err(e) = names_match(&body, &name).and_then(|_| namespace_matches(&body, &ns)) {
                return e;
            }
            let Some(single) = store.get_mut(&key(&name)) else { return not_found(r, &name) };
            if let Some(given) = body["metadata"]["resourceVersion"].as_str()
                && given != single.object["metadata"]["resourceVersion"].as_str().unwrap_or("")
            {
                return modified(r, &name);
            }
            if let Err(e) = validate(r, &name, &body) {
                return e;
            }
            write(single, &body, &updater, rv, &ns, &name);
            axum::Json(rendered(r, single)).into_response()
        }
        ("PATCH", Some(name)) => {
            let media = ask.content_type.split(';').next().unwrap_or("").trim();
            match media {
                "application/apply-patch+yaml" => apply(store, rv, r, &ns, &name, manager, &ask),
                "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                    let patch: Value = match serde_json::from_slice(ask.body) {
                        Ok(Value::Object(p)) => Value::Object(p),
                        Ok(_) => return bad_request("the patch is not a JSON object".into()),
                        Err(e) => return bad_request(format!("error decoding patch: {e}")),
                    };
                    let Some(single) = store.get_mut(&key(&name)) else { return not_found(r, &name) };
                    if let Some(given) = patch["metadata"]["resourceVersion"].as_str()
                        && given != single.object["metadata"]["resourceVersion"].as_str().unwrap_or("")
                    {
                        return modified(r, &name);
                    }
                    let mut merged = single.object.clone();
                    merge_patch(&mut merged, &patch);
                    let merged = match decode(r, merged.to_string().as_bytes(), false) {
                        Ok(m) => m,
                        Err(e) => return e,
                    };
                    if let Err(e) = names_match(&merged, &name).and_then(|_| validate(r, &name, &merged)) {
                        return e;
                    }
                    write(single, &merged, &updater, rv, &ns, &name);
                    axum::Json(rendered(r, single)).into_response()
                }
                other => status(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other:?})"
                    ),
                    json!({}),
                ),
            }
        }
        ("DELETE", Some(name)) => match store.remove(&key(&name)) {
            Some(_) => {
                *rv += 1;
                axum::Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "details": details(r, &name)}))
                .into_response()
            }
            None => not_found(r, &name),
        },
        _ => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".into(),
            json!({}),
        ),
    }
}

/// A server-side apply of the body onto the object named `name` (created when missing).
fn apply(
    store: &mut BTreeMap<(String, String, String), Single>,
    rv: &mut u64,
    r: Resource,
    ns: &str,
    name: &str,
    manager: Option<String>,
    ask: &Ask,
) -> Response {
    let Some(manager) = manager else {
        let message =
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch";
        return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message.into(), json!({}));
    };
    let force = matches!(ask.query.get("force").map(String::as_str), Some("true"));
    // YAML is the media type; JSON is YAML.
    let applied: Value = match serde_json::from_slice(ask.body) {
        Ok(v) => v,
        Err(_) => match std::str::from_utf8(ask.body).ok().and_then(|t| serde_saphyr::from_str(t).ok()) {
            Some(v) => v,
            None => return bad_request("error decoding YAML: the apply patch does not parse".into()),
        },
    };
    let applied = match decode(r, applied.to_string().as_bytes(), true) {
        Ok(a) => a,
        Err(e) => return e,
    };
    if let Err(e) = names_match(&applied, name).and_then(|_| namespace_matches(&applied, ns)) {
        return e;
    }
    let key = (r.plural().to_string(), ns.to_string(), name.to_string());
    // A resourceVersion in the applied configuration is a precondition, as on an update.
    if let (Some(given), Some(live)) = (applied["metadata"]["resourceVersion"].as_str(), store.get(&key))
        && given != live.object["metadata"]["resourceVersion"].as_str().unwrap_or("")
    {
        return modified(r, name);
    }
    let created = !store.contains_key(&key);
    let single = store.entry(key).or_insert_with(|| Single { object: Value::Object(Map::new()), managed: Vec::new() });
    let wanted: BTreeMap<FieldPath, Value> = leaves(&applied).into_iter().filter(|(_, v)| !v.is_null()).collect();
    let mut conflicts: Vec<(String, FieldPath)> = Vec::new();
    for (path, value) in &wanted {
        if get(&single.object, path) == Some(value) {
            continue;
        }
        for m in &single.managed {
            if !(m.manager == manager && m.operation == "Apply") && m.fields.contains(path) {
                conflicts.push((m.manager.clone(), path.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        if created {
            store.remove(&(r.plural().to_string(), ns.to_string(), name.to_string()));
        }
        let field = |p: &FieldPath| format!(".{}", p.join("."));
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(m, p)| json!({"type": "FieldManagerConflict", "message": format!("conflict with \"{m}\""), "field": field(p)}))
            .collect();
        let listed: Vec<String> =
            conflicts.iter().map(|(m, p)| format!("conflict with \"{m}\": {}", field(p))).collect();
        let n = conflicts.len();
        let message = format!("Apply failed with {n} conflict{}: {}", if n == 1 { "" } else { "s" }, listed.join("\n"));
        let mut d = details(r, name);
        d["causes"] = Value::Array(causes);
        return status(StatusCode::CONFLICT, "Conflict", message, d);
    }
    let mut next = single.object.clone();
    let before: BTreeSet<FieldPath> = single
        .managed
        .iter()
        .find(|m| m.manager == manager && m.operation == "Apply")
        .map(|m| m.fields.clone())
        .unwrap_or_default();
    // A field this manager applied before and applies no more goes, unless another owns it.
    for gone in before.iter().filter(|p| !wanted.contains_key(*p)) {
        let shared =
            single.managed.iter().any(|m| !(m.manager == manager && m.operation == "Apply") && m.fields.contains(gone));
        if !shared {
            remove(&mut next, gone);
        }
    }
    for (path, value) in &wanted {
        set(&mut next, path, value.clone());
    }
    if let Err(e) = validate(r, name, &next) {
        if created {
            store.remove(&(r.plural().to_string(), ns.to_string(), name.to_string()));
        }
        return e;
    }
    let owned: BTreeSet<FieldPath> = wanted.keys().cloned().collect();
    for m in single.managed.iter_mut() {
        if !(m.manager == manager && m.operation == "Apply") {
            // Forced: the fields taken over leave their old managers.
            m.fields.retain(|p| !owned.contains(p) || conflicts.iter().all(|(_, c)| c != p));
        }
    }
    let changed = next != single.object || before != owned;
    if changed {
        match single.managed.iter_mut().find(|m| m.manager == manager && m.operation == "Apply") {
            Some(m) => {
                m.fields = owned;
                m.time = now();
            }
            None => single.managed.push(Managed { manager, operation: "Apply", fields: owned, time: now() }),
        }
        single.managed.retain(|m| !m.fields.is_empty());
        stamp(&mut next, rv, ns, name, &single.object);
        single.object = next;
    }
    let out = rendered(r, single);
    (if created { StatusCode::CREATED } else { StatusCode::OK }, axum::Json(out)).into_response()
}

/// Replaces the object's content with `body` on behalf of `manager` (an Update): every field
/// whose value changes moves to the manager.
fn write(single: &mut Single, body: &Value, manager: &str, rv: &mut u64, ns: &str, name: &str) {
    let old = leaves(&single.object);
    let new = leaves(body);
    let changed: BTreeSet<FieldPath> = old
        .iter()
        .filter(|(p, v)| new.get(*p) != Some(*v))
        .map(|(p, _)| p.clone())
        .chain(new.iter().filter(|(p, v)| old.get(*p) != Some(*v)).map(|(p, _)| p.clone()))
        .collect();
    if changed.is_empty() && single.object.get("metadata").is_some() {
        return;
    }
    for m in single.managed.iter_mut() {
        m.fields.retain(|p| !changed.contains(p));
    }
    let taken: BTreeSet<FieldPath> = changed.into_iter().filter(|p| new.contains_key(p)).collect();
    match single.managed.iter_mut().find(|m| m.manager == manager && m.operation == "Update") {
        Some(m) => {
            m.fields.extend(taken);
            m.time = now();
        }
        None => single.managed.push(Managed {
            manager: manager.to_string(),
            operation: "Update",
            fields: taken,
            time: now(),
        }),
    }
    single.managed.retain(|m| !m.fields.is_empty());
    let mut next = body.clone();
    stamp(&mut next, rv, ns, name, &single.object);
    single.object = next;
}

/// The server's part of `metadata`: name, namespace, uid, creation time, a new resourceVersion.
fn stamp(next: &mut Value, rv: &mut u64, ns: &str, name: &str, old: &Value) {
    *rv += 1;
    let Some(o) = next.as_object_mut() else { return };
    o.remove("kind");
    o.remove("apiVersion");
    let meta = o.entry("metadata").or_insert_with(|| json!({}));
    meta["name"] = json!(name);
    meta["namespace"] = json!(ns);
    meta["resourceVersion"] = json!(rv.to_string());
    meta["uid"] = old["metadata"]["uid"].clone();
    if meta["uid"].is_null() {
        meta["uid"] = json!(format!("00000000-0000-4000-8000-{:012}", *rv));
    }
    meta["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
    if meta["creationTimestamp"].is_null() {
        meta["creationTimestamp"] = json!(jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    }
    if let Some(m) = meta.as_object_mut() {
        m.remove("managedFields");
    }
}

/// The object as the server sends it: kind, apiVersion and managedFields filled in.
fn rendered(r: Resource, s: &Single) -> Value {
    let mut o = s.object.clone();
    o["kind"] = json!(r.kind());
    o["apiVersion"] = json!(r.api_version());
    let managed: Vec<Value> = s
        .managed
        .iter()
        .map(|m| {
            let mut tree = json!({});
            for path in &m.fields {
                let mut at = &mut tree;
                for part in path {
                    at = &mut at[format!("f:{part}")];
                    if at.is_null() {
                        *at = json!({});
                    }
                }
            }
            json!({"manager": m.manager, "operation": m.operation, "apiVersion": r.api_version(),
                "time": m.time, "fieldsType": "FieldsV1", "fieldsV1": tree})
        })
        .collect();
    o["metadata"]["managedFields"] = Value::Array(managed);
    o
}

/// Decodes a body as the kind's real type: a field of the wrong type is a 400, as the
/// apiserver's decoder answers. An applied configuration must name its kind and apiVersion.
fn decode(r: Resource, body: &[u8], applying: bool) -> Result<Value, Response> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad_request(format!("error decoding body: {e}")))?;
    if !v.is_object() {
        return Err(bad_request("the body is not an object".into()));
    }
    for (field, want) in [("kind", r.kind()), ("apiVersion", r.api_version())] {
        match v.get(field).and_then(Value::as_str) {
            None if applying => return Err(bad_request(format!("{field} must be set in an apply patch"))),
            Some(given) if given != want => {
                return Err(bad_request(format!("{field} {given:?} does not match the resource ({want:?})")));
            }
            _ => {}
        }
    }
    let typed = match r {
        Resource::Lease => serde_json::from_value::<k8s_openapi::api::coordination::v1::Lease>(v.clone()).err(),
        Resource::ConfigMap => serde_json::from_value::<k8s_openapi::api::core::v1::ConfigMap>(v.clone()).err(),
    };
    match typed {
        Some(e) => Err(bad_request(format!("{} in version \"{}\" cannot be handled: {e}", r.kind(), r.api_version()))),
        None => Ok(v),
    }
}

fn names_match(body: &Value, name: &str) -> Result<(), Response> {
    match body["metadata"]["name"].as_str() {
        Some(given) if given != name => {
            Err(bad_request(format!("the name of the object ({given}) does not match the name on the URL ({name})")))
        }
        _ => Ok(()),
    }
}

fn namespace_matches(body: &Value, ns: &str) -> Result<(), Response> {
    match body["metadata"]["namespace"].as_str() {
        Some(given) if given != ns => Err(bad_request(
            "the namespace of the provided object does not match the namespace sent on the request".into(),
        )),
        _ => Ok(()),
    }
}

/// The validation the apiserver runs on these kinds.
fn validate(r: Resource, name: &str, o: &Value) -> Result<(), Response> {
    let mut causes = Vec::new();
    match r {
        Resource::Lease => {
            if let Some(d) = o["spec"]["leaseDurationSeconds"].as_i64()
                && d <= 0
            {
                causes.push(format!("spec.leaseDurationSeconds: Invalid value: {d}: must be greater than 0"));
            }
            if let Some(t) = o["spec"]["leaseTransitions"].as_i64()
                && t < 0
            {
                causes.push(format!("spec.leaseTransitions: Invalid value: {t}: must be greater than or equal to 0"));
            }
        }
        Resource::ConfigMap => {
            let mut size = 0;
            for section in ["data", "binaryData"] {
                for (k, v) in o[section].as_object().into_iter().flatten() {
                    let ok = !k.is_empty()
                        && k.len() <= 253
                        && k.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
                        && k != "."
                        && k != ".."
                        && !k.starts_with("..");
                    if !ok {
                        causes.push(format!("{section}[{k}]: Invalid value: {k:?}: a valid config key must consist of alphanumeric characters, '-', '_' or '.'"));
                    }
                    size += k.len() + v.as_str().map_or(0, str::len);
                }
            }
            if size > 1024 * 1024 {
                causes.push("[]: Too long: must have at most 1048576 bytes".into());
            }
        }
    }
    if causes.is_empty() { Ok(()) } else { Err(invalid(r, name, causes)) }
}

/// Every scalar (or list) below the content of an object, by path. `metadata` counts only
/// its labels and annotations, the parts a client owns.
fn leaves(o: &Value) -> BTreeMap<FieldPath, Value> {
    fn walk(v: &Value, at: &mut FieldPath, out: &mut BTreeMap<FieldPath, Value>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, child) in m {
                    at.push(k.clone());
                    walk(child, at, out);
                    at.pop();
                }
            }
            Value::Object(_) => {}
            other => {
                out.insert(at.clone(), other.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    let Some(m) = o.as_object() else { return out };
    for (k, v) in m {
        match k.as_str() {
            "kind" | "apiVersion" | "status" => {}
            "metadata" => {
                for part in ["labels", "annotations"] {
                    if let Some(section) = v.get(part) {
                        walk(section, &mut vec!["metadata".into(), part.into()], &mut out);
                    }
                }
            }
            _ => walk(v, &mut vec![k.clone()], &mut out),
        }
    }
    out
}

fn get<'a>(o: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    path.iter().try_fold(o, |at, k| at.get(k))
}

fn set(o: &mut Value, path: &FieldPath, value: Value) {
    let mut at = o;
    for k in path {
        if !at.is_object() {
            *at = json!({});
        }
        at = &mut at[k.as_str()];
    }
    *at = value;
}

fn remove(o: &mut Value, path: &FieldPath) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut at = o;
    for k in parents {
        match at.get_mut(k) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Some(m) = at.as_object_mut() {
        m.remove(last);
    }
}

/// RFC 7386: objects merge, `null` removes, anything else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let Some(t) = target.as_object_mut() else { return };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
