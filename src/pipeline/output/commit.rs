//! The encoded output validated against its rip and renamed into place
//! (never under the final name unvalidated), or kept aside under a name
//! that says it failed.

use super::existing::Kept;
use super::{AtOutput, FileStamp, OutputSlots};
use crate::analysis::Analysis;
use crate::error::{Error, Result};
use crate::events::{Check, Event};
use crate::job::JobInfo;
use crate::pipeline::Pipeline;
use crate::validate::{self, observe::ObserveError};
use std::path::Path;

impl Pipeline<'_> {
    /// Once the output's lock is held: why the output already there is
    /// kept (it is valid), or `None`: none is there, or it is not valid, or
    /// drapto made it from another rip (a rip ripped again: another size),
    /// and it is encoded again, with a warning. A file drapto did not make
    /// is an error (see [`Pipeline::drapto_output`]).
    pub(in crate::pipeline) fn valid_output(
        &self,
        input: &Path,
        analysis: &Analysis,
        output: &Path,
        identity: &JobInfo,
    ) -> Result<Option<String>> {
        let Some((_, record)) = self.drapto_output(input, output, identity)? else { return Ok(None) };
        // The user's file now, whatever became of the rip.
        self.not_remuxed(input, output, &record)?;
        if record.source.size != identity.size {
            let (was, is) = (record.source.size, identity.size);
            let what = format!(
                "existing output {} was made from another rip of this length ({was} bytes; this one has {is}: ripped again); encoding again",
                output.display()
            );
            self.events.emit(&Event::Warning { input: Some(input.to_path_buf()), message: what });
            return Ok(None);
        }
        let kept = |reason: String| {
            // Known from now on without an analysis (see `finished_before`).
            let other_settings = record.settings != self.settings.output_fingerprint();
            if record.source != *identity || other_settings {
                Kept::of(output, identity).write(&self.settings.temp_dir(), output);
            }
            Ok(Some(reason))
        };
        let not_valid = |reasons: String| {
            let what = format!("existing output {} is not valid ({reasons}); encoding again", output.display());
            self.events.emit(&Event::Warning { input: Some(input.to_path_buf()), message: what });
            Ok(None)
        };
        let failed = match self.failed_checks(analysis, output) {
            Ok(failed) => failed,
            Err(unreadable) => return not_valid(unreadable),
        };
        if failed.is_empty() {
            // (A plan with other settings was said: the kept file is not it.)
            return kept(match record.settings == self.settings.output_fingerprint() {
                true => format!("valid output already exists: {}", output.display()),
                false => format!(
                    "valid output already exists, made with other settings, and kept: {} (move it away to encode the rip with these)",
                    output.display()
                ),
            });
        }
        let reasons = validate::failures(&failed).join("; ");
        if failed.iter().all(|c| validate::container::EDITABLE.contains(&c.name.as_str())) {
            // Its picture and sound are the rip's: what differs is what a
            // header editor changes, and the user's edits are kept.
            let what = format!(
                "existing output {} differs from the rip only in its title, track names, languages, flags, chapters or tags ({reasons}), as after an edit of the output (or of the rip): kept as it is; move it away to encode the rip again",
                output.display()
            );
            self.events.emit(&Event::Warning { input: Some(input.to_path_buf()), message: what });
            return kept(format!("output already exists, its headers edited: {}", output.display()));
        }
        not_valid(reasons)
    }

    /// The checks the existing `output` fails against the source; `Err`
    /// when it cannot be read. The picture's size and shape are this run's
    /// plan (its crop), not the rip's: an output cropped otherwise (made
    /// with `--no-crop`, or before the crop detection changed) is the rip's
    /// film all the same, and not made again for a setting.
    fn failed_checks(&self, analysis: &Analysis, output: &Path) -> std::result::Result<Vec<Check>, String> {
        let observed = validate::observe(self.tools, analysis, output, self.cancel).map_err(|e| e.to_string())?;
        let planned = |c: &Check| validate::PICTURE_CHECKS.contains(&c.name.as_str());
        // Judged by the captions its mux found in the pictures.
        let fields = analysis.mux.caption_fields_in(&observed.structure);
        let analysis = &Analysis { mux: analysis.mux.with_captions(&fields), ..analysis.clone() };
        Ok(validate::validate(analysis, &observed).into_iter().filter(|c| !c.passed && !planned(c)).collect())
    }

    /// Validates the partial output; renames it to the final name when it
    /// passes, else to the failed name. Returns its video frames, when its
    /// probe counts them (mkvmerge's statistics tag).
    pub(in crate::pipeline) fn accept(
        &self,
        analysis: &Analysis,
        slots: &OutputSlots,
        at: AtOutput,
    ) -> Result<Option<u64>> {
        let (input, partial) = (analysis.input.as_path(), slots.partial.as_path());
        let observed = validate::observe(self.tools, analysis, partial, self.cancel).map_err(|e| match e {
            ObserveError::Run(f) => Error::process(input)(f),
            ObserveError::Io(e) => Error::io("read", partial)(e),
            ObserveError::Unreadable(m) => Error::Validation {
                path: input.to_path_buf(),
                failures: vec![format!("output unreadable: {m}")],
                kept: None,
            },
        })?;
        // A stop during the reads cuts them short: what they miss is the
        // stop's doing, not the output's (a good encode was failed, and kept
        // as `.failed` for ever beside its rerun's output).
        if let Some(signal) = self.cancel.signal() {
            return Err(Error::Cancelled { signal });
        }
        let checks = validate::validate(analysis, &observed);
        let failures = validate::failures(&checks);
        self.events.emit(&Event::ValidationComplete {
            input: input.to_path_buf(),
            passed: failures.is_empty(),
            checks,
        });
        if failures.is_empty() {
            // On disk before the work that made it is removed; an earlier
            // run's invalid output, kept for inspection, is obsolete.
            self.put_in_place(input, slots, at)?;
            let _ = std::fs::remove_file(&slots.failed);
            Ok(observed.probe.video_streams().next().and_then(|v| v.frame_count()))
        } else {
            std::fs::rename(partial, &slots.failed).map_err(Error::io("rename", &slots.failed))?;
            Err(Error::Validation { path: input.to_path_buf(), failures, kept: Some(slots.failed.clone()) })
        }
    }

    /// Renames the validated partial output to the final name, replacing
    /// only what was there when the rip was taken on (`at`): a file that
    /// appeared under that name since (hours of encode: a user's copy, a
    /// backup restored) is left as it is, and the encode kept beside it
    /// under the failed name.
    fn put_in_place(&self, input: &Path, slots: &OutputSlots, at: AtOutput) -> Result<()> {
        use crate::job::state::{rename_durably, rename_durably_unless_taken};
        let (partial, output) = (slots.partial.as_path(), slots.output.as_path());
        let placed = match (at.0, FileStamp::of(output)) {
            (Some(then), Some(now)) if then == now => rename_durably(partial, output).map(|()| true)?,
            (_, None) => rename_durably_unless_taken(partial, output)?,
            (_, Some(_)) => false,
        };
        if placed {
            return Ok(());
        }
        std::fs::rename(partial, &slots.failed).map_err(Error::io("rename", &slots.failed))?;
        let (path, output, kept) = (input.to_path_buf(), output.to_path_buf(), slots.failed.clone());
        Err(Error::OutputAppeared { path, output, kept })
    }
}
