// Package tui will hold the bubbletea models that render install-engine events and send the user's intents. It
// does no I/O outside tea.Cmd. Nothing is implemented yet; see the open issues.
package tui
