package engine

// Event is one thing the engine reports. Options.Events receives them one at a time (the engine serialises the
// calls), from whichever goroutine produced them; a handler must not block for long. A TUI typically forwards them
// to its program; TextRenderer prints them.
type Event interface{ event() }

// RunStarted opens a run.
type RunStarted struct {
	RunID  string
	DryRun bool
	Hosts  []string
	Phases []string
	// Continuing says what the previous run left unfinished ("" when it finished).
	Continuing string
}

// PhaseStarted: a phase begins. Index counts from 1.
type PhaseStarted struct {
	Phase        string
	Index, Total int
}

// PhaseSkipped: a phase's ShouldRun said no, or no host is left to run it on.
type PhaseSkipped struct {
	Phase, Reason string
}

// PhaseDone: a phase ended. Done and Failed count hosts; Skipped counts hosts left out because they had failed
// before.
type PhaseDone struct {
	Phase                 string
	Done, Failed, Skipped int
	Err                   error // a failure of the phase itself (not of one host); it stops the pipeline
}

// HostStarted: a host begins a phase.
type HostStarted struct {
	Phase, Host string
}

// HostDone: a host finished a phase. Changes counts what the gate changed on it in that phase.
type HostDone struct {
	Phase, Host string
	Changes     int
}

// HostFailed: a host failed a phase (or was interrupted) and takes no part in later phases.
type HostFailed struct {
	Phase, Host string
	Err         error
	Hint        string
	Interrupted bool
}

// StepStarted: a step runs because its marker is missing, stale or not verified.
type StepStarted struct {
	Host, Step, Reason string
}

// StepDone: a step ran and its marker was written.
type StepDone struct {
	Host, Step string
}

// StepSkipped: a step was already done (or, in a dry run, would run: Reason says which).
type StepSkipped struct {
	Host, Step, Reason string
}

// Progress reports bytes of an upload to Host. Label is the remote path.
type Progress struct {
	Host, Label string
	Done, Total int64
}

// Log is a line about a host worth showing live: what the gate changed, or would change in a dry run.
type Log struct {
	Host, Line string
}

// RunDone closes a run.
type RunDone struct {
	Summary *Summary
	Err     error
}

func (RunStarted) event()   {}
func (PhaseStarted) event() {}
func (PhaseSkipped) event() {}
func (PhaseDone) event()    {}
func (HostStarted) event()  {}
func (HostDone) event()     {}
func (HostFailed) event()   {}
func (StepStarted) event()  {}
func (StepDone) event()     {}
func (StepSkipped) event()  {}
func (Progress) event()     {}
func (Log) event()          {}
func (RunDone) event()      {}
