package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/cmdutil"
)

// rejectUnknownCommands makes every command group of the tree (a command
// with subcommands and nothing to run itself, the root and cobra's
// completion command included) behave as gh's do: called bare it prints its
// help and exits 0; called with an argument that names none of its
// subcommands it fails with a usage error (exit 2) that suggests the
// closest ones. Left alone, cobra prints the help and exits 0 for a
// mistyped subcommand (aisix model lsit).
func rejectUnknownCommands(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if !c.HasSubCommands() || c.Run != nil || c.RunE != nil {
			return
		}
		c.Args = unknownCommand
		c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	}
	walk(root)
}

// unknownCommand is the Args of a command group: no argument but a
// subcommand's name, which cobra has resolved before it gets here.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := closest(cmd, args[0]); len(s) > 0 {
		for i := range s {
			s[i] = strconv.Quote(s[i])
		}
		alt := s[len(s)-1]
		if len(s) > 1 {
			alt = strings.Join(s[:len(s)-1], ", ") + " or " + alt
		}
		msg += "; did you mean " + alt + "?"
	}
	return &cmdutil.FlagError{Err: fmt.Errorf("%s", msg)}
}

// closest are the subcommands of cmd one edit away from typed, else two
// (cobra's default distance), and those it is a prefix of.
func closest(cmd *cobra.Command, typed string) []string {
	defer func(d int) { cmd.SuggestionsMinimumDistance = d }(cmd.SuggestionsMinimumDistance)
	var s []string
	for d := 1; d <= 2 && len(s) == 0; d++ {
		cmd.SuggestionsMinimumDistance = d
		s = cmd.SuggestionsFor(typed)
	}
	return s
}
