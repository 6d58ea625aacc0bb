// Command aisix is the AI gateway and its management CLI.
package main

import (
	"os"

	"github.com/aisix/aisix/cli"
)

func main() { os.Exit(cli.Main()) }
