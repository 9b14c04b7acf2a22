//! Evaluating the active liveness check on challenge sessions: a folder per session, each
//! holding its frames (in capture order by file name) and a `session.toml` naming the
//! challenge it answers, its frame times and what it is (bona fide or an attack species).
//!
//! Every session is followed once ([`Engine::follow`]) and judged by the rule the terminals
//! use ([`active_liveness`]) with the configured `[decisions.active_liveness]`. A genuine
//! session is also judged against other challenges of the same length (drawn as the issuer
//! draws them: never the same movement twice in a row), as a recording replayed to a new
//! challenge would be: those must be refused. Measurement only: the thresholds are the
//! configuration's, never tuned here.
//!
//! ```toml
//! label = "bona_fide"              # or an attack species: planar_print, still, replay, …
//! group = "video-frames"           # optional: genuine sessions are also reported per group
//! actions = ["left", "right"]      # the challenge the frames answer (or were made for)
//! fps = 15.0                       # frame i at i / fps seconds; or `times = [0.0, 0.066, …]`
//! synthetic = true                 # assembled or rendered, not a recording of a challenge
//! source = "CMU pose images of an2i, assembled"   # free text: where the frames came from
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::decision::active_liveness;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::face::FaceImage;
use crate::face::motion::HeadMovement;
use crate::stats::interval::{Interval, wilson};
use crate::stats::rng::SplitMix64;

/// The name of the file that describes a session.
pub const SESSION_FILE: &str = "session.toml";

/// A session file as written (see the module docs).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSession {
    label: String,
    group: Option<String>,
    actions: Vec<String>,
    fps: Option<f64>,
    times: Option<Vec<f64>>,
    #[serde(default)]
    synthetic: bool,
    source: Option<String>,
}

/// How a session's frames are timed.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameTimes {
    /// Frame `i` at `i / fps` seconds.
    Fps(f64),
    /// One time per frame, in seconds.
    Times(Vec<f64>),
}

/// What a session file says.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SessionSpec {
    /// `None` for bona fide (`bona_fide`, `live`, …), else the attack species, lower-cased.
    pub attack: Option<String>,
    /// The group the session is reported in besides its label (e.g. where genuine frames
    /// came from), if the file names one.
    pub group: Option<String>,
    /// The challenge the frames answer (bona fide) or were made to look like answering.
    pub actions: Vec<HeadMovement>,
    /// The frames' times.
    pub times: FrameTimes,
    /// Whether the frames were assembled or rendered rather than recorded.
    pub synthetic: bool,
    /// Where the frames came from, as the file says.
    pub source: Option<String>,
}

impl SessionSpec {
    /// Parses a session file's text; `path` names it in errors ([`ErrorKind::Dataset`], saying
    /// what is wrong and what the file needs).
    pub fn parse(text: &str, path: &Path) -> Result<SessionSpec> {
        let bad = |m: String| Error::new(ErrorKind::Dataset, format!("{}: {m}", path.display()));
        let raw: RawSession = toml::from_str(text).map_err(|e| {
            bad(format!(
                "not a session file ({}); it needs label, actions and fps or times",
                e.message()
            ))
        })?;
        let label = raw.label.trim().to_ascii_lowercase();
        if label.is_empty()
            || !label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(bad(format!(
                "label {:?} is neither bona_fide nor an attack species name (letters, digits, _ or -)",
                raw.label
            )));
        }
        let actions = raw
            .actions
            .iter()
            .map(|a| HeadMovement::parse(a))
            .collect::<Result<Vec<_>>>()
            .map_err(|e| bad(e.message().to_string()))?;
        if actions.is_empty() {
            return Err(bad(
                "actions is empty: name the challenge's movements (left, right, up, down)".into(),
            ));
        }
        let times = match (raw.fps, raw.times) {
            (Some(fps), None) if fps.is_finite() && fps > 0.0 && fps <= 240.0 => {
                FrameTimes::Fps(fps)
            }
            (Some(fps), None) => return Err(bad(format!("fps must be in (0, 240], got {fps}"))),
            (None, Some(times)) => FrameTimes::Times(times),
            (Some(_), Some(_)) => {
                return Err(bad("give fps or times, not both".into()));
            }
            (None, None) => {
                return Err(bad(
                    "the frames have no times: give fps or one time per frame".into(),
                ));
            }
        };
        Ok(SessionSpec {
            attack: (!crate::eval::scores::is_bona_fide(&label)).then_some(label),
            group: raw
                .group
                .map(|g| g.trim().to_string())
                .filter(|g| !g.is_empty()),
            actions,
            times,
            synthetic: raw.synthetic,
            source: raw.source,
        })
    }

    /// The times of `frames` frames.
    fn times_of(&self, frames: usize) -> Vec<f64> {
        match &self.times {
            FrameTimes::Fps(fps) => (0..frames).map(|i| i as f64 / fps).collect(),
            FrameTimes::Times(t) => t.clone(),
        }
    }
}

/// One session folder: its description and its frames in capture order.
#[derive(Clone, Debug)]
pub struct ChallengeSession {
    /// The folder's name.
    pub name: String,
    /// What its session file says.
    pub spec: SessionSpec,
    /// Its frames (JPEG or PNG), sorted by file name.
    pub frames: Vec<PathBuf>,
}

/// Every session under `root`: each subfolder holding a [`SESSION_FILE`], in name order.
/// A subfolder without one, a bad session file, a session without frames or with another
/// count of times than frames is an [`ErrorKind::Dataset`] error naming it.
pub fn read_sessions(root: &Path) -> Result<Vec<ChallengeSession>> {
    let entries = std::fs::read_dir(root).map_err(|e| Error::io("listing sessions", root, e))?;
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing sessions", root, e))?;
        if entry.path().is_dir() {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    let mut sessions = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let file = dir.join(SESSION_FILE);
        if !file.is_file() {
            return Err(Error::new(
                ErrorKind::Dataset,
                format!(
                    "{}: no {SESSION_FILE}; every session folder needs one (label, actions, fps or times)",
                    dir.display()
                ),
            ));
        }
        let text = std::fs::read_to_string(&file)
            .map_err(|e| Error::io("reading a session file", &file, e))?;
        let spec = SessionSpec::parse(&text, &file)?;
        let frames = crate::listing::files_under(&dir, &["jpg", "jpeg", "png"])?;
        if frames.is_empty() {
            return Err(Error::new(
                ErrorKind::Dataset,
                format!("{}: the session holds no JPEG or PNG frames", dir.display()),
            ));
        }
        if let FrameTimes::Times(t) = &spec.times
            && t.len() != frames.len()
        {
            return Err(Error::new(
                ErrorKind::Dataset,
                format!(
                    "{}: {} frames but {} times; give one time per frame",
                    file.display(),
                    frames.len(),
                    t.len()
                ),
            ));
        }
        sessions.push(ChallengeSession {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            spec,
            frames,
        });
    }
    if sessions.is_empty() {
        return Err(Error::new(
            ErrorKind::Dataset,
            format!(
                "{} holds no session folders (a folder per session, with its frames and {SESSION_FILE})",
                root.display()
            ),
        ));
    }
    Ok(sessions)
}

/// `count` challenges of `asked.len()` movements, each differing from `asked`, drawn as the
/// issuer draws (never the same movement twice in a row) from `rng`. Draws may repeat one
/// another; none equals `asked`.
pub fn other_challenges(
    asked: &[HeadMovement],
    count: usize,
    rng: &mut SplitMix64,
) -> Vec<Vec<HeadMovement>> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count && !asked.is_empty() {
        let mut c: Vec<HeadMovement> = Vec::with_capacity(asked.len());
        for _ in 0..asked.len() {
            let choices: Vec<HeadMovement> = HeadMovement::ALL
                .into_iter()
                .filter(|m| c.last() != Some(m))
                .collect();
            c.push(choices[rng.below(choices.len() as u64) as usize]);
        }
        if c != asked {
            out.push(c);
        }
    }
    out
}

/// A session judged against one challenge.
#[derive(Clone, Debug, Serialize)]
pub struct ChallengeJudgement {
    /// The challenge.
    pub actions: Vec<HeadMovement>,
    /// Whether the rule accepted the frames as its answer.
    pub passed: bool,
    /// Why not (empty when it passed).
    pub reasons: Vec<&'static str>,
}

/// One session's verdicts.
#[derive(Clone, Debug, Serialize)]
pub struct SessionVerdict {
    /// The session folder's name.
    pub session: String,
    /// `None` for bona fide, else the attack species.
    pub attack: Option<String>,
    /// The session file's group, if any.
    pub group: Option<String>,
    /// Whether the frames were assembled or rendered.
    pub synthetic: bool,
    /// Frames in the session.
    pub frames: usize,
    /// Every movement seen, in order, including those too small to count as an answer.
    pub actions_seen: Vec<HeadMovement>,
    /// Against the session's own challenge.
    pub own: ChallengeJudgement,
    /// Against other challenges (genuine sessions only): replays.
    pub replays: Vec<ChallengeJudgement>,
}

/// A session that could not be judged (a frame that does not decode, a response the engine
/// refuses as malformed).
#[derive(Clone, Debug, Serialize)]
pub struct SessionFailure {
    /// The session folder's name.
    pub session: String,
    /// `None` for bona fide, else the attack species.
    pub attack: Option<String>,
    /// The error kind.
    pub kind: String,
    /// The error message.
    pub message: String,
}

/// Follows each session once and judges it against its own challenge and, when genuine,
/// `replays` other challenges from a generator seeded with `seed`; `threads` sessions at a
/// time (`on_session` after each).
pub fn judge_sessions(
    engine: &Engine,
    sessions: &[ChallengeSession],
    replays: usize,
    seed: u64,
    threads: usize,
    on_session: &(dyn Fn() + Sync),
) -> (Vec<SessionVerdict>, Vec<SessionFailure>) {
    let decisions = &engine.config().decisions;
    // The replay challenges are drawn up front, in session order, so they do not depend on
    // the order workers finish in.
    let mut rng = SplitMix64::new(seed);
    let others: Vec<Vec<Vec<HeadMovement>>> = sessions
        .iter()
        .map(|s| match s.spec.attack {
            None => other_challenges(&s.spec.actions, replays, &mut rng),
            Some(_) => Vec::new(),
        })
        .collect();
    let indexed: Vec<usize> = (0..sessions.len()).collect();
    let outcomes: Vec<Result<SessionVerdict>> =
        crate::parallel::parallel_map(&indexed, threads, on_session, |&i| {
            let session = &sessions[i];
            let frames = session
                .frames
                .iter()
                .map(|p| FaceImage::open(p, &engine.config().limits))
                .collect::<Result<Vec<_>>>()?;
            let times = session.spec.times_of(frames.len());
            let evidence = engine.follow(&frames, &times)?;
            let judge = |actions: &[HeadMovement]| {
                let v = active_liveness(
                    &evidence,
                    actions,
                    decisions.other_face_share,
                    &decisions.active_liveness,
                );
                ChallengeJudgement {
                    actions: actions.to_vec(),
                    passed: v.passed,
                    reasons: v.reasons,
                }
            };
            Ok(SessionVerdict {
                session: session.name.clone(),
                attack: session.spec.attack.clone(),
                group: session.spec.group.clone(),
                synthetic: session.spec.synthetic,
                frames: frames.len(),
                actions_seen: evidence.actions_seen(),
                own: judge(&session.spec.actions),
                replays: others[i].iter().map(|c| judge(c)).collect(),
            })
        });
    let mut verdicts = Vec::new();
    let mut failures = Vec::new();
    for (session, outcome) in sessions.iter().zip(outcomes) {
        match outcome {
            Ok(v) => verdicts.push(v),
            Err(e) => failures.push(SessionFailure {
                session: session.name.clone(),
                attack: session.spec.attack.clone(),
                kind: e.kind().to_string(),
                message: e.to_string(),
            }),
        }
    }
    (verdicts, failures)
}

/// A count of outcomes with its rate and 95 % Wilson interval.
#[derive(Clone, Debug, Serialize)]
pub struct Rate {
    /// Sessions (or judgements) counted.
    pub count: usize,
    /// How many had the outcome the field names.
    pub hits: usize,
    /// `hits / count` (0 without any).
    pub rate: f64,
    /// 95 % Wilson interval of the rate.
    pub interval: Option<Interval>,
}

impl Rate {
    pub(crate) fn of(hits: usize, count: usize) -> Rate {
        Rate {
            count,
            hits,
            rate: if count == 0 {
                0.0
            } else {
                hits as f64 / count as f64
            },
            interval: wilson(hits, count),
        }
    }
}

/// One attack species' sessions.
#[derive(Clone, Debug, Serialize)]
pub struct SpeciesFigures {
    /// The species (the sessions' label).
    pub species: String,
    /// Sessions refused (`hits`) of those judged.
    pub refused: Rate,
    /// How often each refusal reason was given.
    pub reasons: BTreeMap<String, usize>,
}

/// The genuine sessions of one group.
#[derive(Clone, Debug, Serialize)]
pub struct GroupFigures {
    /// The group (the session files' `group`).
    pub group: String,
    /// Genuine sessions of the group accepted (`hits`) against their own challenge.
    pub accepted: Rate,
    /// Why they were refused, and how often.
    pub reasons: BTreeMap<String, usize>,
}

/// The figures of a challenge-session evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct ChallengeSummary {
    /// Genuine sessions accepted (`hits`) against their own challenge.
    pub genuine_accepted: Rate,
    /// Why genuine sessions were refused, and how often.
    pub genuine_reasons: BTreeMap<String, usize>,
    /// Genuine sessions per group, for the sessions whose file names one.
    pub genuine_per_group: Vec<GroupFigures>,
    /// Per attack species.
    pub per_species: Vec<SpeciesFigures>,
    /// Genuine sessions judged against other challenges: refused (`hits`) of those judged.
    pub replays_refused: Rate,
    /// Sessions that were assembled or rendered rather than recorded.
    pub synthetic_sessions: usize,
    /// Sessions that could not be judged (left out of the rates).
    pub failures: Vec<SessionFailure>,
    /// Every session's verdicts.
    pub sessions: Vec<SessionVerdict>,
}

/// How many of `list` were judged `passed` against their own challenge (or not), and the
/// refusal reasons tallied.
fn outcomes(list: &[&SessionVerdict], passed: bool) -> (Rate, BTreeMap<String, usize>) {
    let mut reasons = BTreeMap::new();
    for s in list {
        for r in &s.own.reasons {
            *reasons.entry((*r).to_string()).or_default() += 1;
        }
    }
    let hits = list.iter().filter(|s| s.own.passed == passed).count();
    (Rate::of(hits, list.len()), reasons)
}

/// The verdicts that have a key, by key (in key order).
fn grouped<'a>(
    verdicts: impl Iterator<Item = &'a SessionVerdict>,
    key: impl Fn(&'a SessionVerdict) -> Option<&'a str>,
) -> BTreeMap<&'a str, Vec<&'a SessionVerdict>> {
    let mut out: BTreeMap<&str, Vec<&SessionVerdict>> = BTreeMap::new();
    for v in verdicts {
        if let Some(k) = key(v) {
            out.entry(k).or_default().push(v);
        }
    }
    out
}

/// Counts the verdicts into the summary.
pub fn summarize_challenges(
    sessions: Vec<SessionVerdict>,
    failures: Vec<SessionFailure>,
) -> Result<ChallengeSummary> {
    if sessions.is_empty() {
        return Err(Error::new(
            ErrorKind::Dataset,
            "no session could be judged; see the failures",
        ));
    }
    let genuine: Vec<&SessionVerdict> = sessions.iter().filter(|s| s.attack.is_none()).collect();
    let (genuine_accepted, genuine_reasons) = outcomes(&genuine, true);
    let by_group = grouped(genuine.iter().copied(), |s| s.group.as_deref());
    let genuine_per_group = by_group
        .iter()
        .map(|(group, list)| {
            let (accepted, reasons) = outcomes(list, true);
            GroupFigures {
                group: group.to_string(),
                accepted,
                reasons,
            }
        })
        .collect();
    let replays: Vec<&ChallengeJudgement> = genuine.iter().flat_map(|s| &s.replays).collect();
    let replays_refused = Rate::of(replays.iter().filter(|r| !r.passed).count(), replays.len());
    let by_species = grouped(sessions.iter(), |s| s.attack.as_deref());
    let per_species = by_species
        .iter()
        .map(|(species, list)| {
            let (refused, reasons) = outcomes(list, false);
            SpeciesFigures {
                species: species.to_string(),
                refused,
                reasons,
            }
        })
        .collect();
    drop((genuine, replays, by_species, by_group));
    Ok(ChallengeSummary {
        genuine_accepted,
        genuine_reasons,
        genuine_per_group,
        per_species,
        replays_refused,
        synthetic_sessions: sessions.iter().filter(|s| s.synthetic).count(),
        failures,
        sessions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use HeadMovement::{Down, Left, Right, Up};

    fn parse(text: &str) -> Result<SessionSpec> {
        SessionSpec::parse(text, Path::new("s/session.toml"))
    }

    #[test]
    fn session_files_parse() {
        let s = parse(
            "label = \"bona_fide\"\nactions = [\"left\", \"right\"]\nfps = 15\nsynthetic = true\nsource = \"CMU\"\n",
        )
        .unwrap();
        assert_eq!(s.attack, None);
        assert_eq!(s.actions, [Left, Right]);
        assert_eq!(s.times, FrameTimes::Fps(15.0));
        assert!(s.synthetic);
        assert_eq!(s.group, None);
        assert_eq!(s.times_of(3), [0.0, 1.0 / 15.0, 2.0 / 15.0]);
        let s =
            parse("label = \"Planar_Print\"\nactions = [\"up\"]\ntimes = [0.0, 0.1]\n").unwrap();
        assert_eq!(s.attack.as_deref(), Some("planar_print"));
        assert_eq!(s.times, FrameTimes::Times(vec![0.0, 0.1]));
        assert!(!s.synthetic);
        let s = parse("label = \"live\"\ngroup = \"video-frames\"\nactions = [\"up\"]\nfps = 10\n")
            .unwrap();
        assert_eq!(s.group.as_deref(), Some("video-frames"));
    }

    #[test]
    fn bad_session_files_are_clear_errors() {
        let cases = [
            ("", "label"),
            ("label = \"bona_fide\"\nfps = 15\n", "actions"),
            (
                "label = \"bona_fide\"\nactions = [\"left\"]\n",
                "fps or one time",
            ),
            (
                "label = \"bona_fide\"\nactions = [\"left\"]\nfps = 15\ntimes = [0.0]\n",
                "not both",
            ),
            (
                "label = \"bona_fide\"\nactions = [\"sideways\"]\nfps = 15\n",
                "sideways",
            ),
            (
                "label = \"bona_fide\"\nactions = []\nfps = 15\n",
                "actions is empty",
            ),
            (
                "label = \"bona_fide\"\nactions = [\"left\"]\nfps = 0\n",
                "fps must be",
            ),
            (
                "label = \"a print\"\nactions = [\"left\"]\nfps = 15\n",
                "label",
            ),
            (
                "label = \"still\"\nactions = [\"left\"]\nfps = 15\ncolour = 1\n",
                "colour",
            ),
            ("label = 3\nactions = [\"left\"]\nfps = 15\n", "label"),
            ("not toml at all", "session file"),
        ];
        for (text, says) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Dataset, "{text:?}: {err}");
            let msg = err.to_string();
            assert!(msg.contains("s/session.toml"), "{text:?}: {msg}");
            assert!(msg.contains(says), "{text:?}: {msg} lacks {says:?}");
        }
    }

    #[test]
    fn session_folders_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let err = read_sessions(root).unwrap_err();
        assert!(err.to_string().contains("no session folders"), "{err}");
        std::fs::create_dir(root.join("a")).unwrap();
        let err = read_sessions(root).unwrap_err();
        assert!(err.to_string().contains("no session.toml"), "{err}");
        std::fs::write(
            root.join("a/session.toml"),
            "label = \"still\"\nactions = [\"left\"]\ntimes = [0.0, 0.1, 0.2]\n",
        )
        .unwrap();
        let err = read_sessions(root).unwrap_err();
        assert!(err.to_string().contains("no JPEG or PNG"), "{err}");
        for f in ["f_0002.png", "f_0001.png"] {
            std::fs::write(root.join("a").join(f), "x").unwrap();
        }
        let err = read_sessions(root).unwrap_err();
        assert!(err.to_string().contains("2 frames but 3 times"), "{err}");
        std::fs::write(root.join("a/f_0003.png"), "x").unwrap();
        let sessions = read_sessions(root).unwrap();
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].name, "a");
        let names: Vec<_> = sessions[0]
            .frames
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["f_0001.png", "f_0002.png", "f_0003.png"]);
    }

    #[test]
    fn replay_challenges_differ_and_never_repeat_a_movement() {
        let mut rng = SplitMix64::new(7);
        for asked in [vec![Left, Right], vec![Up], vec![Left, Down, Right]] {
            let others = other_challenges(&asked, 50, &mut rng);
            assert_eq!(others.len(), 50);
            for c in others {
                assert_eq!(c.len(), asked.len());
                assert_ne!(c, asked);
                assert!(c.windows(2).all(|w| w[0] != w[1]), "{c:?}");
            }
        }
    }

    #[test]
    fn verdicts_are_counted_per_species() {
        let verdict = |attack: Option<&str>, passed: bool, replays: &[bool]| SessionVerdict {
            session: "s".into(),
            attack: attack.map(str::to_string),
            group: attack.is_none().then(|| "video".to_string()),
            synthetic: true,
            frames: 30,
            actions_seen: vec![Left],
            own: ChallengeJudgement {
                actions: vec![Left],
                passed,
                reasons: if passed { vec![] } else { vec!["flat_face"] },
            },
            replays: replays
                .iter()
                .map(|&p| ChallengeJudgement {
                    actions: vec![Right],
                    passed: p,
                    reasons: if p { vec![] } else { vec!["wrong_movements"] },
                })
                .collect(),
        };
        let s = summarize_challenges(
            vec![
                verdict(None, true, &[false, false]),
                verdict(None, false, &[false, true]),
                verdict(Some("planar_print"), false, &[]),
                verdict(Some("planar_print"), true, &[]),
                verdict(Some("still"), false, &[]),
            ],
            vec![],
        )
        .unwrap();
        assert_eq!((s.genuine_accepted.hits, s.genuine_accepted.count), (1, 2));
        assert_eq!(s.genuine_reasons["flat_face"], 1);
        assert_eq!(s.genuine_per_group.len(), 1);
        assert_eq!(s.genuine_per_group[0].group, "video");
        assert_eq!(s.genuine_per_group[0].accepted.count, 2);
        assert_eq!((s.replays_refused.hits, s.replays_refused.count), (3, 4));
        assert_eq!(s.per_species.len(), 2);
        assert_eq!(s.per_species[0].species, "planar_print");
        assert_eq!(s.per_species[0].refused.rate, 0.5);
        assert_eq!(s.per_species[1].refused.rate, 1.0);
        assert_eq!(s.synthetic_sessions, 5);
        assert!(summarize_challenges(vec![], vec![]).is_err());
    }
}
