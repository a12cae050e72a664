//! Container `name` and `image` from the runtimes' state files on disk
//! (never their APIs): Docker's config.v2.json, Podman's and CRI-O's
//! containers.json / userdata/config.json, containerd's OCI bundle
//! config.json annotations. Looked up once per container and cached while
//! the container's cgroup exists.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use regex::Regex;
use serde_json::Value;

use crate::roots::FsRoots;

/// Largest state file read.
const MAX_STATE_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Runtime {
    Docker,
    Podman,
    Containerd,
    Crio,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerRef {
    pub runtime: Runtime,
    pub id: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Info {
    pub name: String,
    pub image: String,
}

fn container_re() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?:^|/)(?:(docker|libpod|cri-containerd|crio)-([0-9a-f]{64})\.scope|(docker)/([0-9a-f]{64}))(?:/|$)",
        )
        .ok()
    })
    .as_ref()
}

/// The container a cgroup path belongs to, from its scope or directory name.
pub fn container_of(id: &str) -> Option<ContainerRef> {
    let c = container_re()?.captures(id)?;
    let (kind, cid) = match (c.get(1), c.get(2), c.get(3), c.get(4)) {
        (Some(k), Some(i), _, _) => (k.as_str(), i.as_str()),
        (_, _, Some(k), Some(i)) => (k.as_str(), i.as_str()),
        _ => return None,
    };
    let runtime = match kind {
        "docker" => Runtime::Docker,
        "libpod" => Runtime::Podman,
        "cri-containerd" => Runtime::Containerd,
        _ => Runtime::Crio,
    };
    Some(ContainerRef {
        runtime,
        id: cid.to_owned(),
    })
}

pub struct Names {
    docker: PathBuf,
    storage: PathBuf,
    containerd: PathBuf,
    cache: Mutex<HashMap<ContainerRef, Option<Info>>>,
}

impl Names {
    pub fn new(roots: &FsRoots) -> Self {
        Names {
            docker: roots.root(Path::new("/var/lib/docker/containers")),
            storage: roots.root(Path::new("/var/lib/containers/storage/overlay-containers")),
            containerd: roots.root(Path::new("/run/containerd/io.containerd.runtime.v2.task")),
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn lookup(&self, c: &ContainerRef) -> Option<Info> {
        let mut cache = match self.cache.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        cache
            .entry(c.clone())
            .or_insert_with(|| {
                let info = self.read(c);
                if info.is_none() {
                    tracing::debug!(id = %c.id, runtime = ?c.runtime, "no runtime state file for container");
                }
                info
            })
            .clone()
    }

    /// Drops cached containers whose cgroup is gone.
    pub fn retain(&self, seen: &[ContainerRef]) {
        let mut cache = match self.cache.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        cache.retain(|k, _| seen.contains(k));
    }

    fn read(&self, c: &ContainerRef) -> Option<Info> {
        match c.runtime {
            Runtime::Docker => docker(&read_json(&self.docker.join(&c.id).join("config.v2.json"))?),
            Runtime::Podman => podman(&read_json(&self.storage.join("containers.json"))?, &c.id),
            Runtime::Crio => {
                let cfg = read_json(&self.storage.join(&c.id).join("userdata/config.json"));
                cfg.and_then(|v| {
                    annotations(
                        &v,
                        "io.kubernetes.container.name",
                        "io.kubernetes.cri-o.ImageName",
                    )
                })
                .or_else(|| podman(&read_json(&self.storage.join("containers.json"))?, &c.id))
            }
            Runtime::Containerd => {
                let rd = std::fs::read_dir(&self.containerd).ok()?;
                rd.flatten().find_map(|ns| {
                    let v = read_json(&ns.path().join(&c.id).join("config.json"))?;
                    annotations(
                        &v,
                        "io.kubernetes.cri.container-name",
                        "io.kubernetes.cri.image-name",
                    )
                    .or_else(|| annotations(&v, "nerdctl/name", "io.containerd.image.name"))
                })
            }
        }
    }
}

fn read_json(p: &Path) -> Option<Value> {
    use std::io::Read;
    let f = std::fs::File::open(p).ok()?;
    let mut buf = Vec::new();
    f.take(MAX_STATE_BYTES).read_to_end(&mut buf).ok()?;
    match serde_json::from_slice(&buf) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::debug!(path = %p.display(), err = %e, "unparsable runtime state file");
            None
        }
    }
}

fn s(v: &Value, ptr: &str) -> String {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// Docker: `Name` ("/web") and `Config.Image`.
pub fn docker(v: &Value) -> Option<Info> {
    let name = s(v, "/Name").trim_start_matches('/').to_owned();
    let image = s(v, "/Config/Image");
    (!name.is_empty() || !image.is_empty()).then_some(Info { name, image })
}

/// Podman / containers-storage: `names[0]`, image name from the
/// `metadata` JSON string.
pub fn podman(list: &Value, id: &str) -> Option<Info> {
    let c = list
        .as_array()?
        .iter()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(id))?;
    let name = c
        .pointer("/names/0")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let image = c
        .get("metadata")
        .and_then(Value::as_str)
        .and_then(|m| serde_json::from_str::<Value>(m).ok())
        .map(|m| s(&m, "/image-name"))
        .unwrap_or_default();
    Some(Info { name, image })
}

/// An OCI config's annotations.
fn annotations(v: &Value, name_key: &str, image_key: &str) -> Option<Info> {
    let a = v.get("annotations")?;
    let get = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let info = Info {
        name: get(name_key),
        image: get(image_key),
    };
    (!info.name.is_empty() || !info.image.is_empty()).then_some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids() {
        let id = "ab".repeat(32);
        let c = container_of(&format!("/system.slice/docker-{id}.scope")).unwrap();
        assert_eq!((c.runtime, c.id.as_str()), (Runtime::Docker, id.as_str()));
        let c = container_of(&format!("/docker/{id}")).unwrap();
        assert_eq!(c.runtime, Runtime::Docker);
        let c = container_of(&format!("/machine.slice/libpod-{id}.scope/container")).unwrap();
        assert_eq!(c.runtime, Runtime::Podman);
        let c = container_of(&format!(
            "/kubepods.slice/x.slice/cri-containerd-{id}.scope"
        ))
        .unwrap();
        assert_eq!(c.runtime, Runtime::Containerd);
        assert!(container_of("/system.slice/docker.service").is_none());
        assert!(container_of("/docker/abc").is_none());
    }

    #[test]
    fn state_files() {
        let v: Value =
            serde_json::from_str(r#"{"ID":"x","Name":"/web","Config":{"Image":"nginx:1.25"}}"#)
                .unwrap();
        assert_eq!(
            docker(&v),
            Some(Info {
                name: "web".into(),
                image: "nginx:1.25".into()
            })
        );
        assert_eq!(docker(&serde_json::json!({})), None);
        let l: Value = serde_json::from_str(r#"[{"id":"a","names":["db"],"metadata":"{\"image-name\":\"docker.io/library/postgres:16\"}"}]"#).unwrap();
        assert_eq!(
            podman(&l, "a"),
            Some(Info {
                name: "db".into(),
                image: "docker.io/library/postgres:16".into()
            })
        );
        assert_eq!(podman(&l, "b"), None);
        let o: Value = serde_json::from_str(r#"{"annotations":{"io.kubernetes.cri.container-name":"app","io.kubernetes.cri.image-name":"img:1"}}"#).unwrap();
        assert_eq!(
            annotations(
                &o,
                "io.kubernetes.cri.container-name",
                "io.kubernetes.cri.image-name"
            ),
            Some(Info {
                name: "app".into(),
                image: "img:1".into()
            })
        );
    }
}
