//! The shell every page shares: the header with the app's name and the
//! navigation, the alert banner, a notice, the footer; the stylesheet and
//! the script by their hashed names; the CSRF token for the script.

use maud::{DOCTYPE, Markup, html};
use sauve_engine::AlertRecord;

use crate::assets;
use crate::format;

/// The page's place in the navigation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tab {
    Backup,
    History,
    Journal,
    Log,
    Restore,
    Settings,
}

const TABS: [(Tab, &str, &str); 6] = [
    (Tab::Backup, "/", "Backup"),
    (Tab::History, "/history", "History"),
    (Tab::Journal, "/journal", "Journal"),
    (Tab::Log, "/log", "Log"),
    (Tab::Restore, "/restore", "Restore"),
    (Tab::Settings, "/settings", "Settings"),
];

/// A message at the top of the page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Notice {
    /// Something was done.
    Done(String),
    /// Something was refused or failed.
    Error(String),
}

/// What the shell needs besides the page's own content.
pub(crate) struct Shell<'a> {
    /// The `<title>` and `<h1>`.
    pub(crate) title: &'a str,
    /// `None` for pages shown before login.
    pub(crate) tab: Option<Tab>,
    /// The viewer's CSRF token (logged-in pages).
    pub(crate) csrf: Option<&'a str>,
    /// The app's folder name.
    pub(crate) app: &'a str,
    /// Open alerts, for the banner.
    pub(crate) alerts: &'a [AlertRecord],
    /// A message at the top.
    pub(crate) notice: Option<Notice>,
    /// The server's zone, for dates before the script shows them in the
    /// viewer's.
    pub(crate) zone: &'a jiff::tz::TimeZone,
}

/// A whole page.
pub(crate) fn page(shell: Shell<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(csrf) = shell.csrf {
                    meta name="csrf-token" content=(csrf);
                }
                title { (shell.title) " · sauve · " (shell.app) }
                link rel="icon" href=(assets::icon()) type="image/svg+xml";
                link rel="stylesheet" href=(assets::css());
                script src=(assets::js()) defer {}
            }
            body {
                a class="skip" href="#content" { "Skip to the content" }
                header class="top" {
                    div class="bar" {
                        a class="brand" href="/" {
                            img src=(assets::icon()) alt="";
                            "sauve"
                            span class="app-name" { (shell.app) }
                        }
                        @if let Some(tab) = shell.tab {
                            nav class="main" aria-label="Pages" {
                                @for (t, href, label) in TABS {
                                    @if t == tab {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                            @if let Some(csrf) = shell.csrf {
                                form class="logout" method="post" action="/logout" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" { "Log out" }
                                }
                            }
                        }
                    }
                }
                main id="content" {
                    @if shell.tab.is_some() {
                        div id="alerts" aria-live="polite" {
                            (alert_banner(shell.alerts, shell.csrf.unwrap_or(""), shell.zone))
                        }
                    }
                    h1 { (shell.title) }
                    @match &shell.notice {
                        Some(Notice::Done(m)) => { p class="notice done" role="status" id="action-message" { (m) } },
                        Some(Notice::Error(m)) => { p class="notice error" role="alert" id="action-message" { (m) } },
                        None => { p class="notice" role="status" id="action-message" hidden {} },
                    }
                    (body)
                }
                footer class="page" {
                    "sauve " (env!("CARGO_PKG_VERSION")) " · dates in your local time"
                }
            }
        }
    }
}

/// The banner of open alerts: each with its headline, when it was raised,
/// how it was delivered, and Acknowledge (which clears it for everyone).
pub(crate) fn alert_banner(
    alerts: &[AlertRecord],
    csrf: &str,
    zone: &jiff::tz::TimeZone,
) -> Markup {
    html! {
        @for a in alerts {
            section class="banner" role="alert" aria-label={"Alert " (a.alert.id)} {
                div {
                    strong { "⚠ Alert " (a.alert.id) ": " }
                    (a.alert.headline())
                    div class="small muted" {
                        "Raised " (format::time(a.alert.raised, zone))
                        @if let Some(e) = a.alert.errors.first() { " · " (e) }
                        @if !a.deliveries.is_empty() {
                            " · " (a.deliveries.join("; "))
                        }
                    }
                }
                form method="post" action={"/alerts/" (a.alert.id) "/ack"} data-async="alerts" {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Acknowledge" }
                }
            }
        }
    }
}
