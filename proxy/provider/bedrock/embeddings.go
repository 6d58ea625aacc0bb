package bedrock

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/aisix/aisix/proxy/provider"
)

// Embeddings through InvokeModel, answered as OpenAI's /v1/embeddings
// list. Titan Text Embeddings takes one text per call
// ({"inputText","dimensions","normalize"} → {"embedding",
// "inputTextTokenCount"}); an OpenAI list of more than one input is
// refused rather than fanned out, so that one caller request stays one
// upstream call (one attempt, one failure class, one cooldown decision).
// Cohere Embed takes a list ({"texts","input_type"} → {"embeddings",
// "id","texts"}; input_type search_document unless the caller's body sets
// one) and reports no token count.

// EmbedFamily is the embeddings wire of a model id.
type EmbedFamily uint8

const (
	EmbedNone    EmbedFamily = iota
	EmbedTitanV1             // amazon.titan-embed-text-v1: inputText only
	EmbedTitanV2             // amazon.titan-embed-text-v2:0: dimensions, normalize
	EmbedCohere              // cohere.embed-english-v3, cohere.embed-multilingual-v3
)

// EmbedFamilyOf reads a model id, profile id or ARN.
func EmbedFamilyOf(id string) EmbedFamily {
	switch f := FoundationModel(id); {
	case strings.HasPrefix(f, "amazon.titan-embed-text-v2"):
		return EmbedTitanV2
	case strings.HasPrefix(f, "amazon.titan-embed-text-v1"), strings.HasPrefix(f, "amazon.titan-embed-g1-text"):
		return EmbedTitanV1
	case strings.HasPrefix(f, "cohere.embed-"):
		return EmbedCohere
	}
	return EmbedNone
}

// cohereMaxTexts is Cohere Embed's limit of texts per call on Bedrock.
const cohereMaxTexts = 96

type embedRequest struct {
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
	// InputType is Cohere's input_type, which OpenAI's request has no
	// field for: a caller may set it (default search_document).
	InputType string `json:"input_type"`
}

// embedInputs reads OpenAI's input: a string or a list of strings (token
// arrays are refused: Bedrock's models take text).
func embedInputs(raw json.RawMessage) ([]string, error) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil && len(list) > 0 {
		return list, nil
	}
	return nil, reqErr("input", "must be a string or a non-empty list of strings (token arrays are not supported on Bedrock)")
}

// EmbeddingsBody translates an OpenAI embeddings body for family.
func EmbeddingsBody(body []byte, family EmbedFamily) ([]byte, error) {
	var in embedRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, reqErr("body", "is not a valid embeddings request")
	}
	if in.EncodingFormat != "" && in.EncodingFormat != "float" && in.EncodingFormat != "base64" {
		return nil, reqErr("encoding_format", `must be "float" or "base64"`)
	}
	texts, err := embedInputs(in.Input)
	if err != nil {
		return nil, err
	}
	switch family {
	case EmbedTitanV1, EmbedTitanV2:
		if len(texts) > 1 {
			return nil, reqErr("input", "Titan embeddings take one input per request; send one string (or use a Cohere embed model for lists)")
		}
		b := append(make([]byte, 0, len(texts[0])+64), `{"inputText":`...)
		b = provider.AppendJSONString(b, texts[0])
		if in.Dimensions != nil {
			if family == EmbedTitanV1 {
				return nil, reqErr("dimensions", "amazon.titan-embed-text-v1 has a fixed size; dimensions is not supported")
			}
			switch *in.Dimensions {
			case 256, 512, 1024:
			default:
				return nil, reqErr("dimensions", "must be 256, 512 or 1024 for Titan Text Embeddings V2")
			}
			b = append(b, `,"dimensions":`...)
			b = strconv.AppendInt(b, int64(*in.Dimensions), 10)
		}
		if family == EmbedTitanV2 {
			// OpenAI's embeddings are unit vectors.
			b = append(b, `,"normalize":true`...)
		}
		return append(b, '}'), nil
	case EmbedCohere:
		if in.Dimensions != nil {
			return nil, reqErr("dimensions", "Cohere Embed v3 has a fixed size; dimensions is not supported")
		}
		if len(texts) > cohereMaxTexts {
			return nil, reqErr("input", "Cohere Embed on Bedrock takes at most 96 inputs per request")
		}
		typ := in.InputType
		switch typ {
		case "":
			typ = "search_document"
		case "search_document", "search_query", "classification", "clustering":
		default:
			return nil, reqErr("input_type", "must be search_document, search_query, classification or clustering")
		}
		b, _ := json.Marshal(struct {
			Texts     []string `json:"texts"`
			InputType string   `json:"input_type"`
		}{texts, typ})
		return b, nil
	}
	return nil, provider.ErrUnsupportedOp
}

// ErrNotEmbedding is a 2xx answer that is not the model's embeddings
// response.
var ErrNotEmbedding = errors.New("upstream answer is not a Bedrock embeddings response")

// EmbeddingsAnswer turns a Titan or Cohere answer into OpenAI's list
// {"object":"list","data":[{"object":"embedding","index","embedding"}],
// "model","usage"} (usage only when the model reports a token count), the
// vectors as floats, or with base64 little-endian float32s.
func EmbeddingsAnswer(dst, body []byte, family EmbedFamily, alias string, b64 bool) ([]byte, error) {
	var vecs [][]float64
	tokens := int64(-1)
	switch family {
	case EmbedTitanV1, EmbedTitanV2:
		var r struct {
			Embedding  []float64 `json:"embedding"`
			TokenCount *int64    `json:"inputTextTokenCount"`
		}
		if json.Unmarshal(body, &r) != nil || r.Embedding == nil {
			return dst, ErrNotEmbedding
		}
		vecs = [][]float64{r.Embedding}
		if r.TokenCount != nil {
			tokens = *r.TokenCount
		}
	case EmbedCohere:
		var r struct {
			Embeddings [][]float64 `json:"embeddings"`
		}
		if json.Unmarshal(body, &r) != nil || r.Embeddings == nil {
			return dst, ErrNotEmbedding
		}
		vecs = r.Embeddings
	default:
		return dst, ErrNotEmbedding
	}
	return provider.AppendEmbeddings(dst, vecs, alias, b64, tokens), nil
}
