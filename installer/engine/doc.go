// Package engine runs the install pipeline: a literal list of phases, run top to bottom, whose per-host work runs in
// parallel under a limit, so that servers are turned into a cluster the same way every time and a re-run picks up
// where the last one stopped.
//
// Its parts:
//   - Phase is a small type with a title and Run; Preparer, Conditional and DryRunner are optional hooks found by
//     type assertion. ForEachHost and OnHosts make a phase out of per-host work.
//   - Node is the gate: the only way a phase touches a node. Query reads (always run, in a dry run too); Exec,
//     PutFile, Upload and Unit change. PutFile and Unit are content-addressed and change nothing when the node
//     already holds the content. In a dry run no change is made: each is added to the host's Plan, which is what
//     `wtctl cluster install --dry-run` prints.
//   - Node.Step runs a unit of work once: it keeps a marker on the node (/var/lib/wutong/markers/ID) holding the
//     sha256 of the step's inputs, and a re-run skips a step whose marker matches (and whose optional verify passes).
//     Markers are the truth for skipping.
//   - The journal (WORKDIR/journal.jsonl) records, for people and for the summary, what each run did; Unfinished
//     says what the last run left undone. Each host has a log (WORKDIR/logs/HOST.log) with every command the gate
//     ran; commands marked remote.Cmd.Redact stay redacted there and everywhere else.
//   - Typed events (RunStarted, PhaseStarted, Progress, HostFailed, …) go to Options.Events; TextRenderer prints
//     them for a terminal or a log, and the TUI renders the same stream.
//   - A host that fails is marked failed with its phase, error and a remediation hint (Hint, HintError) and left out
//     of later phases; the other hosts carry on. Cancelling ctx stops new steps from starting, records
//     "interrupted" in the journal and makes Run return an error matching context.Canceled.
package engine
