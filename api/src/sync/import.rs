//! `baseline-hub import`: figures from files in the tidy layout of the government's
//! open statistics CSVs (see `docs/import-example.csv` and the README).
//!
//! The file is streamed: memory stays flat whatever its size (one batch of rows, the
//! register for validation). Rows are validated as they are read, exactly as a bulk
//! call's are, and written in batches, each batch in one transaction with the run's
//! checkpoint — the byte offset just past its last row. So an import that is killed
//! loses at most the batch in flight, and running the same command again finds the
//! run by the file's digest and carries on from the checkpoint: nothing twice, nothing
//! missing. A fully imported file imports as a no-op.
//!
//! Bad rows are reported (line and reason) and skipped; the good rows are written.
//! With `strict`, the whole file is validated first and nothing is written if any row
//! is bad.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use entities::sync_run;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, Set, TransactionTrait,
};
use sha2::{Digest, Sha256};

use super::rows::{self, Figure, FigureInput, FigureKey, Problems, Reference};
use super::{FAILED, Kind, RUNNING, SUCCEEDED, Source, Writer, new_run, store};
use crate::audit::{self, AuditEvent};
use crate::db;
use crate::domain::{AccessLevel, AuditAction, ENGLAND_CODE, GeographicLevel, PupilGroup};
use crate::error::RowProblem;

/// Figures per transaction: large enough that commits do not dominate, small enough
/// that a batch in memory is about a megabyte and a kill loses little.
pub const DEFAULT_BATCH: usize = 5_000;

/// Markers official statistics use for a figure that is not published (`c`
/// confidential, `x` unavailable, `z` not applicable, `u` low reliability, `:` not
/// available, `low` rounded to zero): the cell is skipped, not rejected.
const NOT_PUBLISHED: &[&str] = &["c", "x", "z", "u", ":", "low"];

fn is_not_published(text: &str) -> bool {
    NOT_PUBLISHED
        .iter()
        .any(|marker| text.eq_ignore_ascii_case(marker))
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is empty: expected a header line")]
    Empty { path: PathBuf },
    #[error("the header is not in the accepted layout: {0}")]
    Header(String),
    #[error("{rejected} row(s) are bad; with --strict nothing was written")]
    StrictRejected { rejected: u64 },
    #[error("another import of this file advanced its checkpoint; stopped to avoid writing twice")]
    Raced,
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// How to run an import.
#[derive(Clone, Debug)]
pub struct Options {
    pub path: PathBuf,
    pub strict: bool,
    /// Start from the top even if an earlier run of this file stopped half-way.
    pub restart: bool,
    pub batch: usize,
    /// A wait after each committed batch but the last (`--pause-ms`): throttles an
    /// import on a database that is serving dashboards at the same time.
    pub pause: Duration,
    /// Where to write the report of rejected rows (CSV: line, field, reason).
    pub rejects: Option<PathBuf>,
}

/// What an import did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub run_id: i64,
    /// Data lines read in this invocation.
    pub lines: u64,
    /// Figures read (a wide line holds several).
    pub figures: u64,
    pub written: u64,
    pub unchanged: u64,
    /// Cells marked as not published.
    pub not_published: u64,
    pub rejected: u64,
    /// The line the import resumed after, when it continued an earlier run.
    pub resumed_after_line: Option<u64>,
    /// The file had been imported completely before: nothing was done.
    pub already_imported: bool,
    pub elapsed: Duration,
    /// Indicators whose figures were written (for cache invalidation).
    pub indicators: Vec<String>,
}

impl Summary {
    pub fn figures_per_second(&self) -> f64 {
        self.figures as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Reports progress: bytes of the file done, and figures so far.
pub trait Progress {
    fn advance(&self, bytes: u64, figures: u64);
}

impl Progress for () {
    fn advance(&self, _: u64, _: u64) {}
}

/// Imports a file as `writer`.
pub async fn run(
    db: &DatabaseConnection,
    writer: &Writer,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Summary, ImportError> {
    let started = Instant::now();
    let io = |source| ImportError::Io {
        path: options.path.clone(),
        source,
    };
    let digest = file_digest(&options.path).map_err(io)?;
    let key = format!("csv:{digest}");
    let mut reader = Reader::open(&options.path).map_err(io)?;
    let layout = reader.layout()?;
    let reference = Reference::load(db, None).await?;
    let mut rejects = Rejects::create(options.rejects.as_deref()).map_err(io)?;

    let earlier = sync_run::Entity::find()
        .filter(sync_run::Column::OrganisationId.eq(writer.principal.organisation.id))
        .filter(sync_run::Column::IdempotencyKey.eq(key.clone()))
        .one(db)
        .await?;
    let run = match earlier {
        Some(run) if run.status == SUCCEEDED && !options.restart => {
            return Ok(Summary {
                run_id: run.id,
                already_imported: true,
                elapsed: started.elapsed(),
                ..Summary::default()
            });
        }
        Some(run) if !options.restart => run,
        Some(run) => {
            // The old run keeps its record but gives up the file's key.
            let mut old: sync_run::ActiveModel = run.into();
            old.idempotency_key = Set(None);
            old.update(db).await?;
            new_import_run(db, writer, &key, &digest).await?
        }
        None => new_import_run(db, writer, &key, &digest).await?,
    };

    if options.strict {
        let rejected = validate_all(&options.path, &reference, writer, &mut rejects).await?;
        if rejected > 0 {
            mark_failed(db, run.id, "rows rejected under --strict").await?;
            return Err(ImportError::StrictRejected { rejected });
        }
    }

    let mut summary = Summary {
        run_id: run.id,
        ..Summary::default()
    };
    if let (Some(offset), Some(line)) = (run.checkpoint_offset, run.checkpoint_line) {
        reader.seek(offset as u64, line as u64).map_err(io)?;
        summary.resumed_after_line = Some((line as u64).saturating_sub(1));
    }
    let mut checkpoint = run.checkpoint_offset;
    let mut batch = Batch::default();
    let mut indicators = HashSet::new();
    // Where the last line read began: a batch cut short by a repeated figure is
    // checkpointed there, because the rest of that line's figures are still held back.
    let mut line_start = reader.position();
    loop {
        let before = reader.position();
        let line = reader.next_line();
        if matches!(line, Line::Fields(..)) {
            line_start = before;
        }
        let at_end = matches!(line, Line::End);
        match line {
            Line::End => {}
            Line::Io(err) => return Err(io(err)),
            Line::Bad(problem) => {
                summary.lines += 1;
                batch.rejected += 1;
                rejects.write(&problem).map_err(io)?;
            }
            Line::Fields(number, fields) => {
                summary.lines += 1;
                let mut problems = Problems::default();
                let (inputs, skipped) = layout.figures(number as usize, &fields, &mut problems);
                let figures: Vec<Figure> = inputs
                    .into_iter()
                    .filter_map(|input| {
                        rows::figure(
                            &reference,
                            &writer.scope,
                            number as usize,
                            input,
                            &mut problems,
                        )
                    })
                    .collect();
                if problems.is_empty() {
                    summary.not_published += skipped;
                    for figure in figures {
                        indicators.insert(figure.indicator_code.clone());
                        batch.push(figure);
                    }
                } else {
                    batch.rejected += 1;
                    for problem in problems.invalid.iter().chain(&problems.forbidden) {
                        rejects.write(problem).map_err(io)?;
                    }
                }
            }
        }
        if batch.figures.len() >= options.batch || batch.duplicate || at_end {
            // At the end, held-back repeats may need more than one commit.
            loop {
                let (offset, line) = if batch.duplicate {
                    line_start
                } else {
                    reader.position()
                };
                // A batch rolled back by a conflict with concurrent writers is
                // written again whole (its checkpoint moves with it).
                let counts = db::retry_conflicts(
                    || commit(db, writer, run.id, &batch, checkpoint, offset, line),
                    |err| matches!(err, ImportError::Db(err) if db::is_conflict(err)),
                )
                .await?;
                batch.reset();
                checkpoint = Some(offset as i64);
                summary.figures += counts.figures;
                summary.written += counts.written;
                summary.unchanged += counts.figures - counts.written;
                summary.rejected += counts.rejected;
                progress.advance(offset, summary.figures);
                if !at_end || batch.is_empty() {
                    break;
                }
            }
            if !at_end && !options.pause.is_zero() {
                tokio::time::sleep(options.pause).await;
            }
        }
        if at_end {
            break;
        }
    }
    rejects.finish().map_err(io)?;
    let mut done: sync_run::ActiveModel = sync_run::Entity::find_by_id(run.id)
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("sync run {}", run.id)))?
        .into();
    done.status = Set(SUCCEEDED.to_owned());
    done.finished_at = Set(Some(Utc::now()));
    done.update(db).await?;
    crate::db::analyze(db, &["observation", "observation_deletion"]).await?;
    summary.elapsed = started.elapsed();
    summary.indicators = indicators.into_iter().collect();
    summary.indicators.sort();
    Ok(summary)
}

async fn new_import_run(
    db: &DatabaseConnection,
    writer: &Writer,
    key: &str,
    digest: &str,
) -> Result<sync_run::Model, DbErr> {
    sync_run::ActiveModel {
        organisation_id: Set(Some(writer.principal.organisation.id)),
        subject: Set(writer.principal.subject.clone()),
        source: Set(Source::CsvImport.as_str().to_owned()),
        kind: Set(Kind::Observations.as_str().to_owned()),
        status: Set(RUNNING.to_owned()),
        idempotency_key: Set(Some(key.to_owned())),
        request_hash: Set(Some(digest.to_owned())),
        ..new_run()
    }
    .insert(db)
    .await
}

async fn mark_failed(db: &DatabaseConnection, id: i64, error: &str) -> Result<(), DbErr> {
    if let Some(run) = sync_run::Entity::find_by_id(id).one(db).await? {
        let mut run: sync_run::ActiveModel = run.into();
        run.status = Set(FAILED.to_owned());
        run.finished_at = Set(Some(Utc::now()));
        run.error = Set(Some(error.to_owned()));
        // A strict run that wrote nothing gives up the key, so the fixed file (a
        // different digest anyway) or this one can be tried again.
        run.idempotency_key = Set(None);
        run.update(db).await?;
    }
    Ok(())
}

/// Figures waiting to be written, and the rows rejected since the last commit.
#[derive(Default)]
struct Batch {
    figures: Vec<Figure>,
    keys: HashSet<FigureKey>,
    rejected: u64,
    /// A figure repeated one already in the batch: the batch is written first, so the
    /// later row wins as it would if the file were applied line by line. Figures after
    /// the repeat wait in `held` for the next batch.
    duplicate: bool,
    held: Vec<Figure>,
}

impl Batch {
    fn push(&mut self, figure: Figure) {
        if self.duplicate || !self.keys.insert(figure.key()) {
            self.duplicate = true;
            self.held.push(figure);
        } else {
            self.figures.push(figure);
        }
    }

    fn is_empty(&self) -> bool {
        self.figures.is_empty() && self.held.is_empty() && self.rejected == 0
    }

    /// Empties the batch, moving held-back figures into the next one.
    fn reset(&mut self) {
        self.figures.clear();
        self.keys.clear();
        self.rejected = 0;
        self.duplicate = false;
        for figure in std::mem::take(&mut self.held) {
            self.push(figure);
        }
    }
}

struct Counts {
    figures: u64,
    written: u64,
    rejected: u64,
}

/// Writes a batch and moves the checkpoint in one transaction. The checkpoint moves
/// only from where this import last left it, so two imports of one file cannot both
/// write the same stretch.
async fn commit(
    db: &DatabaseConnection,
    writer: &Writer,
    run_id: i64,
    batch: &Batch,
    previous: Option<i64>,
    offset: u64,
    line: u64,
) -> Result<Counts, ImportError> {
    let txn = db.begin().await?;
    let figures = batch.figures.len() as u64;
    let mut written = 0;
    if !batch.figures.is_empty() {
        let first = store::take_positions(&txn, batch.figures.len()).await?;
        let stamp = store::Stamp {
            source_organisation_id: Some(writer.principal.organisation.id),
            sync_run_id: run_id,
            at: Utc::now(),
        };
        written = store::upsert_figures(&txn, &batch.figures, first, stamp).await?;
    }
    let moved = txn
        .execute_raw(store::statement(
            txn.get_database_backend(),
            "UPDATE sync_run SET checkpoint_offset = $1, checkpoint_line = $2, \
             rows_received = rows_received + $3, rows_written = rows_written + $4, \
             rows_unchanged = rows_unchanged + $5, rows_rejected = rows_rejected + $6 \
             WHERE id = $7 AND COALESCE(checkpoint_offset, -1) = $8",
            [
                (offset as i64).into(),
                (line as i64).into(),
                ((figures + batch.rejected) as i64).into(),
                (written as i64).into(),
                ((figures - written) as i64).into(),
                (batch.rejected as i64).into(),
                run_id.into(),
                previous.unwrap_or(-1).into(),
            ],
        ))
        .await?
        .rows_affected();
    if moved != 1 {
        txn.rollback().await?;
        return Err(ImportError::Raced);
    }
    if written > 0 {
        audit::record(
            &txn,
            AuditEvent::new(
                &writer.principal,
                AuditAction::Write,
                AccessLevel::School,
                format!("sync_run:{run_id}"),
            )
            .operation(Some("import"))
            .rows(written as usize),
        )
        .await
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    }
    txn.commit().await?;
    Ok(Counts {
        figures,
        written,
        rejected: batch.rejected,
    })
}

/// The `--strict` pass: reads the whole file and reports every bad row; writes nothing.
async fn validate_all(
    path: &Path,
    reference: &Reference,
    writer: &Writer,
    rejects: &mut Rejects,
) -> Result<u64, ImportError> {
    let io = |source| ImportError::Io {
        path: path.to_owned(),
        source,
    };
    let mut reader = Reader::open(path).map_err(io)?;
    let layout = reader.layout()?;
    let mut rejected = 0;
    loop {
        match reader.next_line() {
            Line::End => return Ok(rejected),
            Line::Io(err) => return Err(io(err)),
            Line::Bad(problem) => {
                rejected += 1;
                rejects.write(&problem).map_err(io)?;
            }
            Line::Fields(number, fields) => {
                let mut problems = Problems::default();
                let (inputs, _) = layout.figures(number as usize, &fields, &mut problems);
                for input in inputs {
                    rows::figure(
                        reference,
                        &writer.scope,
                        number as usize,
                        input,
                        &mut problems,
                    );
                }
                if !problems.is_empty() {
                    rejected += 1;
                    for problem in problems.invalid.iter().chain(&problems.forbidden) {
                        rejects.write(problem).map_err(io)?;
                    }
                }
            }
        }
    }
}

/// SHA-256 of the file, read in blocks: identifies the file for resuming.
fn file_digest(path: &Path) -> std::io::Result<String> {
    let mut file = BufReader::new(File::open(path)?);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(crate::digest::hex(&hasher.finalize()))
}

/// The rejected-rows report: `line,field,reason` lines, to a file if asked, and the
/// first few to standard error as they are found.
struct Rejects {
    file: Option<csv::Writer<File>>,
    shown: usize,
}

/// Rejected rows printed to standard error before the rest go to the report only.
const REJECTS_SHOWN: usize = 20;

impl Rejects {
    fn create(path: Option<&Path>) -> std::io::Result<Rejects> {
        let file = match path {
            Some(path) => {
                let mut writer = csv::Writer::from_path(path)?;
                writer.write_record(["line", "field", "reason"])?;
                Some(writer)
            }
            None => None,
        };
        Ok(Rejects { file, shown: 0 })
    }

    fn write(&mut self, problem: &RowProblem) -> std::io::Result<()> {
        if self.shown < REJECTS_SHOWN {
            self.shown += 1;
            let mut err = std::io::stderr().lock();
            let _ = writeln!(
                err,
                "rejected: line {}, {}: {}",
                problem.index, problem.field, problem.reason
            );
        }
        if let Some(file) = &mut self.file {
            file.write_record([
                problem.index.to_string().as_str(),
                problem.field,
                problem.reason.as_str(),
            ])?;
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

/// One line of the file.
enum Line {
    /// A data line: its number (1-based, the header is line 1) and its fields.
    Fields(u64, Vec<String>),
    /// A line that cannot be read as a row (wrong field count, invalid UTF-8).
    Bad(RowProblem),
    Io(std::io::Error),
    End,
}

/// A streaming CSV reader that remembers where it is, so an import can seek back to a
/// checkpoint.
struct Reader {
    path: PathBuf,
    csv: csv::Reader<BufReader<File>>,
    headers: Vec<String>,
    record: csv::ByteRecord,
}

impl Reader {
    fn open(path: &Path) -> std::io::Result<Reader> {
        let file = BufReader::with_capacity(1 << 16, File::open(path)?);
        let csv = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(true)
            .from_reader(file);
        Ok(Reader {
            path: path.to_owned(),
            csv,
            headers: Vec::new(),
            record: csv::ByteRecord::new(),
        })
    }

    /// Reads the header and works out the layout.
    fn layout(&mut self) -> Result<Layout, ImportError> {
        let headers = self
            .csv
            .byte_headers()
            .map_err(|e| ImportError::Header(format!("unreadable header: {e}")))?
            .clone();
        if headers.is_empty() || (headers.len() == 1 && headers[0].is_empty()) {
            return Err(ImportError::Empty {
                path: self.path.clone(),
            });
        }
        self.headers = headers
            .iter()
            .map(|h| {
                std::str::from_utf8(h)
                    .map(|s| s.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
                    .map_err(|_| ImportError::Header("the header is not valid UTF-8".to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Layout::new(&self.headers)
    }

    fn seek(&mut self, offset: u64, line: u64) -> std::io::Result<()> {
        let mut position = csv::Position::new();
        position.set_byte(offset).set_line(line);
        self.csv.seek(position).map_err(std::io::Error::other)
    }

    /// Byte offset just past the last line read, and the number of the line that
    /// starts there.
    fn position(&self) -> (u64, u64) {
        let position = self.csv.position();
        (position.byte(), position.line())
    }

    fn next_line(&mut self) -> Line {
        match self.csv.read_byte_record(&mut self.record) {
            Ok(false) => Line::End,
            Err(err) => match err.into_kind() {
                csv::ErrorKind::Io(err) => Line::Io(err),
                other => Line::Bad(RowProblem {
                    index: self.csv.position().line() as usize,
                    field: "line",
                    reason: format!("malformed CSV: {other:?}"),
                }),
            },
            Ok(true) => {
                let number = self.record.position().map(|p| p.line()).unwrap_or_default();
                if self.record.len() != self.headers.len() {
                    return Line::Bad(RowProblem {
                        index: number as usize,
                        field: "line",
                        reason: format!(
                            "expected {} fields, found {} (truncated or malformed line)",
                            self.headers.len(),
                            self.record.len()
                        ),
                    });
                }
                let mut fields = Vec::with_capacity(self.record.len());
                for (i, field) in self.record.iter().enumerate() {
                    match std::str::from_utf8(field) {
                        Ok(text) => fields.push(text.trim().to_owned()),
                        Err(_) => {
                            return Line::Bad(RowProblem {
                                index: number as usize,
                                field: column_name(&self.headers, i),
                                reason: "not valid UTF-8".to_owned(),
                            });
                        }
                    }
                }
                Line::Fields(number, fields)
            }
        }
    }
}

/// Column names for problems: the known ones by name, anything else as a value column.
fn column_name(headers: &[String], index: usize) -> &'static str {
    const KNOWN: &[&str] = &[
        "time_period",
        "time_identifier",
        "geographic_level",
        "country_code",
        "region_code",
        "old_la_code",
        "school_urn",
        "pupil_group",
        "indicator",
        "value",
        "numerator",
        "denominator",
        "school_count",
    ];
    headers
        .get(index)
        .and_then(|h| KNOWN.iter().find(|k| *k == h).copied())
        .unwrap_or("value")
}

/// Which columns hold what.
struct Layout {
    time_period: usize,
    time_identifier: usize,
    level: usize,
    country: Option<usize>,
    region: Option<usize>,
    la: Option<usize>,
    urn: Option<usize>,
    group: Option<usize>,
    school_count: Option<usize>,
    values: Values,
}

enum Values {
    /// `indicator`, `value` and optional `numerator` / `denominator` columns.
    Long {
        indicator: usize,
        value: usize,
        numerator: Option<usize>,
        denominator: Option<usize>,
    },
    /// One column per indicator, with optional `<code>_numerator` / `_denominator`.
    Wide(Vec<WideColumn>),
}

struct WideColumn {
    code: String,
    value: usize,
    numerator: Option<usize>,
    denominator: Option<usize>,
}

/// Columns of the official layout that are not indicator values.
const DESCRIPTIVE: &[&str] = &[
    "time_period",
    "time_identifier",
    "geographic_level",
    "country_code",
    "country_name",
    "region_code",
    "region_name",
    "old_la_code",
    "new_la_code",
    "la_name",
    "school_urn",
    "school_name",
    "school_laestab",
    "pupil_group",
    "school_count",
];

impl Layout {
    fn new(headers: &[String]) -> Result<Layout, ImportError> {
        let find = |name: &str| headers.iter().position(|h| h == name);
        let missing: Vec<&str> = ["time_period", "time_identifier", "geographic_level"]
            .into_iter()
            .filter(|name| find(name).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(ImportError::Header(format!(
                "missing column(s) {}; the first columns are time_period, time_identifier, \
                 geographic_level, then area codes (country_code, region_code, old_la_code, \
                 school_urn)",
                missing.join(", ")
            )));
        }
        let mut seen = HashSet::new();
        if let Some(dup) = headers.iter().find(|h| !seen.insert(h.as_str())) {
            return Err(ImportError::Header(format!("column {dup:?} appears twice")));
        }
        let values = match (find("indicator"), find("value")) {
            (Some(indicator), Some(value)) => Values::Long {
                indicator,
                value,
                numerator: find("numerator"),
                denominator: find("denominator"),
            },
            (Some(_), None) | (None, Some(_)) => {
                return Err(ImportError::Header(
                    "the long layout needs both `indicator` and `value` columns".to_owned(),
                ));
            }
            (None, None) => {
                let by_name: HashMap<&str, usize> = headers
                    .iter()
                    .enumerate()
                    .map(|(i, h)| (h.as_str(), i))
                    .collect();
                let columns: Vec<WideColumn> = headers
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| {
                        !DESCRIPTIVE.contains(&h.as_str())
                            && !h.ends_with("_numerator")
                            && !h.ends_with("_denominator")
                            && !h.ends_with("_name")
                    })
                    .map(|(value, code)| WideColumn {
                        code: code.clone(),
                        value,
                        numerator: by_name.get(format!("{code}_numerator").as_str()).copied(),
                        denominator: by_name.get(format!("{code}_denominator").as_str()).copied(),
                    })
                    .collect();
                if columns.is_empty() {
                    return Err(ImportError::Header(
                        "no value columns: name one column per indicator code (wide layout) \
                         or give `indicator` and `value` columns (long layout)"
                            .to_owned(),
                    ));
                }
                Values::Wide(columns)
            }
        };
        Ok(Layout {
            time_period: find("time_period").unwrap_or_default(),
            time_identifier: find("time_identifier").unwrap_or_default(),
            level: find("geographic_level").unwrap_or_default(),
            country: find("country_code"),
            region: find("region_code"),
            la: find("old_la_code"),
            urn: find("school_urn"),
            group: find("pupil_group"),
            school_count: find("school_count"),
            values,
        })
    }

    /// The figures on one line, and how many of its cells were marked not published.
    /// Problems with the line's descriptive columns are recorded and give no figures.
    fn figures(
        &self,
        line: usize,
        fields: &[String],
        problems: &mut Problems,
    ) -> (Vec<FigureInput>, u64) {
        let mut bad = |field: &'static str, reason: &str| {
            problems.invalid(line, field, reason);
        };
        if !fields[self.time_identifier].eq_ignore_ascii_case("academic year") {
            bad(
                "time_identifier",
                "only `Academic year` figures are accepted",
            );
        }
        let period = academic_year(&fields[self.time_period]);
        if period.is_none() {
            bad("time_period", "not an academic year like 202324 or 2023/24");
        }
        let level = geographic_level(&fields[self.level]);
        if level.is_none() {
            bad(
                "geographic_level",
                "expected National, Regional, Local authority or School",
            );
        }
        let area = level.and_then(|level| {
            let (column, name) = match level {
                GeographicLevel::National => (self.country, "country_code"),
                GeographicLevel::Region => (self.region, "region_code"),
                GeographicLevel::La => (self.la, "old_la_code"),
                GeographicLevel::School => (self.urn, "school_urn"),
            };
            match column.map(|c| fields[c].as_str()) {
                Some(code) if !code.is_empty() => Some(code.to_owned()),
                _ if level == GeographicLevel::National => Some(ENGLAND_CODE.to_owned()),
                _ => {
                    bad(name, "empty, but this level's figures are keyed by it");
                    None
                }
            }
        });
        let group = match self.group.map(|c| fields[c].as_str()) {
            None | Some("") => Some(PupilGroup::All),
            Some(text) => {
                let group = pupil_group(text);
                if group.is_none() {
                    bad("pupil_group", "not a known pupil group");
                }
                group
            }
        };
        let school_count = match self.school_count.map(|c| fields[c].as_str()) {
            None | Some("") => Ok(None),
            Some(text) => text.parse::<i32>().map(Some).map_err(|_| ()),
        };
        if school_count.is_err() {
            bad("school_count", "not a whole number");
        }
        let (Some(period), Some(level), Some(area), Some(group), Ok(school_count)) =
            (period, level, area, group, school_count)
        else {
            return (Vec::new(), 0);
        };
        let figure = |code: &str, value: Option<f64>, numerator, denominator| FigureInput {
            indicator_code: code.to_owned(),
            period: period.clone(),
            level,
            area_code: area.clone(),
            pupil_group: group,
            numerator,
            denominator,
            value,
            school_count,
        };
        let mut number = |column: Option<usize>, field: &'static str| -> Option<f64> {
            let text = column.map(|c| fields[c].as_str())?;
            if text.is_empty() || is_not_published(text) {
                return None;
            }
            match text.replace(',', "").parse::<f64>() {
                Ok(n) if n.is_finite() => Some(n),
                _ => {
                    problems.invalid(line, field, "not a number");
                    None
                }
            }
        };
        let cells: Vec<(&str, usize, Option<usize>, Option<usize>)> = match &self.values {
            Values::Long {
                indicator,
                value,
                numerator,
                denominator,
            } => vec![(
                fields[*indicator].as_str(),
                *value,
                *numerator,
                *denominator,
            )],
            Values::Wide(columns) => columns
                .iter()
                .map(|c| (c.code.as_str(), c.value, c.numerator, c.denominator))
                .collect(),
        };
        let mut out = Vec::new();
        let mut skipped = 0;
        for (code, value, numerator, denominator) in cells {
            // A marked value is not published whatever else the line says; an empty
            // one is worked out from numerator and denominator when they are given.
            if is_not_published(&fields[value]) {
                skipped += 1;
                continue;
            }
            let v = number(Some(value), "value");
            let n = number(numerator, "numerator");
            let d = number(denominator, "denominator");
            if v.is_none() && n.is_none() {
                skipped += 1;
                continue;
            }
            out.push(figure(code, v, n, d));
        }
        (out, skipped)
    }
}

/// `202324` or `2023/24` → `2023/24`.
fn academic_year(text: &str) -> Option<String> {
    let period = if text.len() == 6 && text.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}/{}", &text[..4], &text[4..])
    } else {
        text.to_owned()
    };
    crate::domain::is_valid_period(&period).then_some(period)
}

fn geographic_level(text: &str) -> Option<GeographicLevel> {
    match text.to_ascii_lowercase().as_str() {
        "national" => Some(GeographicLevel::National),
        "regional" | "region" => Some(GeographicLevel::Region),
        "local authority" | "la" => Some(GeographicLevel::La),
        "school" => Some(GeographicLevel::School),
        _ => None,
    }
}

/// The hub's pupil groups, and the names official files give them.
fn pupil_group(text: &str) -> Option<PupilGroup> {
    let normalised = text.trim().to_ascii_uppercase().replace([' ', '-'], "_");
    PupilGroup::parse(&normalised).or(match normalised.as_str() {
        "TOTAL" | "ALL_PUPILS" => Some(PupilGroup::All),
        "DISADVANTAGED_ALL_OTHER" | "NOT_KNOWN_TO_BE_DISADVANTAGED" => {
            Some(PupilGroup::NotDisadvantaged)
        }
        "EHC_PLAN" => Some(PupilGroup::Ehcp),
        "LOOKED_AFTER" | "CHILDREN_LOOKED_AFTER" | "IN_CARE" => Some(PupilGroup::ChildrenInCare),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::WriteScope;
    use entities::{indicator, organisation, school};

    #[test]
    fn official_spellings_are_understood() {
        assert_eq!(academic_year("202324").as_deref(), Some("2023/24"));
        assert_eq!(academic_year("2023/24").as_deref(), Some("2023/24"));
        assert_eq!(academic_year("202325"), None);
        assert_eq!(academic_year("2023"), None);
        assert_eq!(
            geographic_level("Local authority"),
            Some(GeographicLevel::La)
        );
        assert_eq!(geographic_level("Ward"), None);
        assert_eq!(pupil_group("Total"), Some(PupilGroup::All));
        assert_eq!(
            pupil_group("Disadvantaged all other"),
            Some(PupilGroup::NotDisadvantaged)
        );
        assert_eq!(pupil_group("SEN support"), Some(PupilGroup::SenSupport));
        assert_eq!(pupil_group("boys"), None);
    }

    fn headers(text: &str) -> Vec<String> {
        text.split(',').map(str::to_owned).collect()
    }

    #[test]
    fn layouts_are_recognised_and_bad_headers_refused() {
        let wide = Layout::new(&headers(
            "time_period,time_identifier,geographic_level,school_urn,attendance_rate,attendance_rate_numerator",
        ))
        .unwrap();
        let Values::Wide(columns) = wide.values else {
            panic!("wide expected")
        };
        assert_eq!(columns.len(), 1);
        assert_eq!(columns[0].numerator, Some(5));
        assert!(matches!(
            Layout::new(&headers("time_period,geographic_level,school_urn,x")),
            Err(ImportError::Header(m)) if m.contains("time_identifier")
        ));
        assert!(matches!(
            Layout::new(&headers(
                "time_period,time_identifier,geographic_level,indicator"
            )),
            Err(ImportError::Header(_))
        ));
        assert!(matches!(
            Layout::new(&headers("time_period,time_identifier,geographic_level,school_urn")),
            Err(ImportError::Header(m)) if m.contains("no value columns")
        ));
    }

    #[test]
    fn not_published_cells_are_skipped_and_bad_numbers_rejected() {
        let layout = Layout::new(&headers(
            "time_period,time_identifier,geographic_level,school_urn,a,b",
        ))
        .unwrap();
        let line = |text: &str| headers(text);
        let mut problems = Problems::default();
        let (figures, skipped) = layout.figures(
            2,
            &line("202324,Academic year,School,100001,c,12.5"),
            &mut problems,
        );
        assert!(problems.is_empty());
        assert_eq!((figures.len(), skipped), (1, 1));
        assert_eq!(figures[0].period, "2023/24");
        assert_eq!(figures[0].value, Some(12.5));
        let (_, _) = layout.figures(
            3,
            &line("202324,Academic year,School,100001,abc,1"),
            &mut problems,
        );
        assert_eq!(problems.invalid[0].index, 3);
        assert_eq!(problems.invalid[0].field, "value");
    }

    /// Fuzzes the file path of an import, short of the database: random files made of
    /// CSV-ish pieces (separators, quotes, line ends, markers, numbers, invalid UTF-8)
    /// behind a valid or broken header are read, laid out and validated. The property:
    /// no panic, every line is read once in order, and every problem names a line.
    /// Fixed seed, so a run is repeatable.
    #[test]
    fn random_files_never_panic_and_every_problem_names_a_line() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

        let pieces = prop::sample::select(vec![
            &b","[..],
            b"\n",
            b"\r\n",
            b"\"",
            b"\"\"",
            b"202425",
            b"2024/25",
            b"Academic year",
            b"School",
            b"Local authority",
            b"National",
            b"100001",
            b"852",
            b"E92000001",
            b"suspension_rate",
            b"Total",
            b"c",
            b"x",
            b"-1",
            b"12.5",
            b"1e308",
            b"NaN",
            b"\xff\xfe",
            b" ",
        ]);
        let file = (
            prop::bool::ANY,
            prop::collection::vec(prop::collection::vec(pieces, 0..30), 0..20),
        );
        let indicator = indicator::Model {
            code: "suspension_rate".into(),
            name: "Suspension rate".into(),
            unit: "RATE_PER_100".into(),
            polarity: "LOWER_IS_BETTER".into(),
            multiplier: 100.0,
            description: String::new(),
        };
        let school = school::Model {
            urn: 100001,
            name: "x".into(),
            phase: "PRIMARY".into(),
            establishment_type: "COMMUNITY".into(),
            la_id: 1,
            trust_id: None,
            diocese_id: None,
            region_code: "E12000008".into(),
            is_open: true,
            pupils_on_roll: 100,
            last_inspection_date: None,
        };
        let reference =
            Reference::in_memory(vec![indicator], vec![school], &["852"], &["E12000008"]);
        let hub = organisation::Model {
            id: 1,
            kind: "HUB".into(),
            code: "HUB".into(),
            name: "Hub".into(),
            region_code: None,
        };
        let scope = WriteScope::of(&hub);
        let dir = std::env::temp_dir().join(format!("hub-import-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fuzz.csv");

        let config = Config {
            cases: 300,
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
        runner
            .run(&file, |(good_header, lines)| {
                let mut bytes: Vec<u8> = if good_header {
                    LONG_HEADER.as_bytes().to_vec()
                } else {
                    Vec::new()
                };
                for line in lines {
                    for piece in line {
                        bytes.extend_from_slice(piece);
                    }
                }
                std::fs::write(&path, &bytes).unwrap();
                let mut reader = Reader::open(&path).unwrap();
                let Ok(layout) = reader.layout() else {
                    return Ok(());
                };
                let mut last = 1;
                loop {
                    match reader.next_line() {
                        Line::End => break,
                        Line::Io(err) => panic!("io error reading a file: {err}"),
                        Line::Bad(problem) => prop_assert!(problem.index >= 1),
                        Line::Fields(number, fields) => {
                            prop_assert!(number > last, "line {number} after {last}");
                            last = number;
                            let mut problems = Problems::default();
                            let (inputs, _) =
                                layout.figures(number as usize, &fields, &mut problems);
                            for input in inputs {
                                rows::figure(
                                    &reference,
                                    &scope,
                                    number as usize,
                                    input,
                                    &mut problems,
                                );
                            }
                            for problem in problems.invalid.iter().chain(&problems.forbidden) {
                                prop_assert_eq!(problem.index, number as usize);
                            }
                        }
                    }
                }
                Ok(())
            })
            .unwrap();
    }

    const LONG_HEADER: &str = "time_period,time_identifier,geographic_level,country_code,region_code,old_la_code,school_urn,pupil_group,indicator,value,numerator,denominator\n";
}
