//! Where the page and `sauve settings set` may point sauve (SECURITY.md,
//! "The page"): a destination, an attachment or a restore target set from
//! there must lie in a folder or `s3://` prefix the operator allowed
//! (`[security] allowed_paths` in sauve.toml), by default the app's parent
//! folder, or in the destination in force before the change. A logged-in
//! user of the page can then neither add any file of the server to the
//! sets nor write sets or restores anywhere on it.

use std::path::{Path, PathBuf};

use crate::layout::{Destination, is_store_url, lexical, physical};
use crate::own::SecuritySettings;

/// The folders and prefixes allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowed {
    folders: Vec<PathBuf>,
    prefixes: Vec<String>,
}

impl Allowed {
    /// What `security` allows for `app` (its parent folder when it says
    /// nothing), and `current`, the destination in force, if any.
    pub fn of(app: &Path, security: &SecuritySettings, current: Option<&Destination>) -> Allowed {
        let mut allowed = Allowed {
            folders: Vec::new(),
            prefixes: Vec::new(),
        };
        match &security.allowed_paths {
            Some(items) => {
                for item in items {
                    if is_store_url(item) {
                        allowed.prefixes.push(prefix(item));
                    } else {
                        allowed.folders.push(PathBuf::from(item));
                    }
                }
            }
            None => allowed
                .folders
                .push(app.parent().unwrap_or(app).to_path_buf()),
        }
        match current {
            Some(Destination::Folder(p)) => allowed.folders.push(p.clone()),
            Some(Destination::Store { url, .. }) => allowed.prefixes.push(prefix(url)),
            None => {}
        }
        allowed
    }

    /// Whether `path` (a file or folder, existing or not) lies in an allowed
    /// folder, as written and on the disk: a symlink inside an allowed
    /// folder that leads out of it does not make its target allowed.
    pub fn permits_path(&self, path: &Path) -> bool {
        self.folders.iter().any(|root| within(root, path))
    }

    /// Whether the destination lies in an allowed folder or prefix.
    pub fn permits(&self, destination: &Destination) -> bool {
        match destination {
            Destination::Folder(p) => self.permits_path(p),
            Destination::Store { url, .. } => {
                let url = prefix(url);
                self.prefixes.iter().any(|p| url.starts_with(p.as_str()))
            }
        }
    }

    /// The refusal of `what`, naming what is allowed.
    pub fn refusal(&self, what: &str) -> String {
        let mut names: Vec<String> = self
            .folders
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        names.extend(self.prefixes.iter().cloned());
        format!(
            "{what} is outside the folders the operator allowed (accepted: inside {}; [security] allowed_paths in sauve.toml says more)",
            names.join(", ")
        )
    }
}

/// An `s3://` URL as a prefix ending with `/`, lower-case scheme.
fn prefix(url: &str) -> String {
    let rest = &url.trim()["s3://".len().min(url.trim().len())..];
    let mut p = format!("s3://{rest}");
    if !p.ends_with('/') {
        p.push('/');
    }
    p
}

/// `path` is `root` or inside it, lexically and, where they exist, on the
/// disk.
fn within(root: &Path, path: &Path) -> bool {
    if !lexical(path).starts_with(lexical(root)) {
        return false;
    }
    match (physical(path), physical(root)) {
        (Some(p), Some(r)) => p.starts_with(r),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_operator_allowed_is_permitted_as_written_and_on_disk() {
        let t = tempfile::tempdir().unwrap();
        let app = t.path().join("App");
        std::fs::create_dir_all(&app).unwrap();
        std::os::unix::fs::symlink("/etc", t.path().join("etc-link")).unwrap();
        let by_default = Allowed::of(&app, &SecuritySettings::default(), None);
        assert!(by_default.permits_path(&t.path().join("Backups")));
        assert!(by_default.permits_path(&app.join("../Attachments/a.pdf")));
        for outside in [
            PathBuf::from("/etc/passwd"),
            app.join("../../etc"),
            t.path().join("etc-link/passwd"),
        ] {
            assert!(!by_default.permits_path(&outside), "{}", outside.display());
        }
        let store = Destination::Store {
            url: "s3://b/apps/".to_owned(),
            records: PathBuf::new(),
        };
        assert!(!by_default.permits(&store));
        let configured = Allowed::of(
            &app,
            &SecuritySettings {
                allowed_paths: Some(vec!["/srv/backups".to_owned(), "s3://b/apps".to_owned()]),
            },
            Some(&Destination::Folder(PathBuf::from("/mnt/old"))),
        );
        assert!(configured.permits(&store));
        assert!(configured.permits_path(Path::new("/srv/backups/x")));
        assert!(configured.permits_path(Path::new("/mnt/old")));
        assert!(!configured.permits_path(&t.path().join("Backups")));
        assert!(!configured.permits(&Destination::Store {
            url: "s3://b/other/".to_owned(),
            records: PathBuf::new(),
        }));
        assert!(
            configured
                .refusal("\"/etc\"")
                .contains("accepted: inside /srv/backups, /mnt/old, s3://b/apps/")
        );
    }
}
