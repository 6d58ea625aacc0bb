package messages

import (
	"bytes"
	"encoding/json"
)

// The estimate's constants (see CountTokensEstimate).
const (
	// BytesPerToken: about 4 bytes of English or code per token (CJK text,
	// 3 bytes a character, comes out near one token a character).
	BytesPerToken = 4
	// MessageOverhead is the framing of one message (role, separators).
	MessageOverhead = 4
	// ToolOverhead is the framing of one tool definition.
	ToolOverhead = 8
	// ImageTokens is one image: Anthropic's cost of an image near its
	// 1.15-megapixel cap ((width × height) / 750).
	ImageTokens = 1600
	// DocumentTokens is one PDF document: about two pages at the 1,500 to
	// 3,000 tokens Anthropic quotes per page. It is a guess: the page
	// count is not known without reading the PDF.
	DocumentTokens = 3000
)

// CountTokensEstimate estimates the input tokens of a Messages request, for
// count_tokens on a target that has no such endpoint: the bytes of the
// system text, of every text, tool_use input, tool_result and text
// document, and of each tool's name, description and input_schema JSON,
// divided by BytesPerToken, plus MessageOverhead per message (and for the
// system prompt), ToolOverhead per tool, ImageTokens per image and
// DocumentTokens per PDF. Thinking blocks are not counted (ToChat drops
// them). It is an estimate, not a tokenizer: expect it within about 20% on
// English and code. The result is at least 1; an error is a
// *RequestError for a body that is not a Messages request.
func CountTokensEstimate(body []byte) (int64, error) {
	in, err := decodeRequest(body)
	if err != nil {
		return 0, err
	}
	var nbytes, fixed int64
	if !isNull(in.System) {
		sys, err := systemText(in.System)
		if err != nil {
			return 0, err
		}
		nbytes += int64(len(sys))
		fixed += MessageOverhead
	}
	var count func(field string, blocks []anBlock) error
	count = func(field string, blocks []anBlock) error {
		for _, blk := range blocks {
			switch blk.Type {
			case "text":
				nbytes += int64(len(blk.Text))
			case "image":
				fixed += ImageTokens
			case "document":
				if blk.Source != nil && blk.Source.Type == "text" {
					nbytes += int64(len(blk.Source.Data) + len(blk.Title))
				} else {
					fixed += DocumentTokens
				}
			case "tool_use":
				nbytes += int64(len(blk.ID) + len(blk.Name) + len(bytes.TrimSpace(blk.Input)))
			case "tool_result":
				nbytes += int64(len(blk.ToolUseID))
				inner, err := contentBlocks(field, blk.Content)
				if err != nil {
					return err
				}
				if err := count(field, inner); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, m := range in.Messages {
		blocks, err := contentBlocks("messages", m.Content)
		if err != nil {
			return 0, err
		}
		fixed += MessageOverhead
		if err := count("messages", blocks); err != nil {
			return 0, err
		}
	}
	for _, t := range in.Tools {
		fixed += ToolOverhead
		nbytes += int64(len(t.Name) + len(t.Description))
		var buf bytes.Buffer
		if json.Compact(&buf, t.InputSchema) == nil {
			nbytes += int64(buf.Len())
		}
	}
	return max(fixed+(nbytes+BytesPerToken-1)/BytesPerToken, 1), nil
}
