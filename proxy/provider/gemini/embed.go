package gemini

import (
	"bytes"
	"encoding/json"

	"github.com/aisix/aisix/proxy/provider"
)

type oaEmbedRequest struct {
	Input          json.RawMessage `json:"input"`
	Dimensions     *int            `json:"dimensions"`
	EncodingFormat string          `json:"encoding_format"`
}

type gmEmbedContent struct {
	Model                string    `json:"model,omitempty"`
	Content              gmContent `json:"content"`
	OutputDimensionality *int      `json:"outputDimensionality,omitempty"`
}

// batchPrefix starts every batchEmbedContents body TranslateEmbedRequest
// writes: NewRequest sends such a body to :batchEmbedContents.
var batchPrefix = []byte(`{"requests":`)

// TranslateEmbedRequest turns an OpenAI embeddings body into an
// EmbedContentRequest (input a string) or a BatchEmbedContentsRequest
// (input an array of strings, each request naming models/<model>);
// dimensions → outputDimensionality. Token arrays are refused: Gemini
// embeds text only.
func TranslateEmbedRequest(body []byte, model string) ([]byte, error) {
	var in oaEmbedRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &RequestError{Field: "body", Reason: jsonReason(err)}
	}
	if in.Dimensions != nil && *in.Dimensions < 1 {
		return nil, reqErr("dimensions", "must be at least 1")
	}
	switch in.EncodingFormat {
	case "", "float", "base64":
	default:
		return nil, reqErr("encoding_format", "must be float or base64")
	}
	var one string
	if json.Unmarshal(in.Input, &one) == nil {
		return json.Marshal(gmEmbedContent{Content: gmContent{Parts: []gmPart{textPart(one)}}, OutputDimensionality: in.Dimensions})
	}
	var many []string
	if err := json.Unmarshal(in.Input, &many); err != nil {
		return nil, reqErr("input", "must be a string or an array of strings (Gemini does not embed token arrays)")
	}
	if len(many) == 0 {
		return nil, reqErr("input", "must not be empty")
	}
	reqs := make([]gmEmbedContent, len(many))
	for i, s := range many {
		reqs[i] = gmEmbedContent{Model: "models/" + model, Content: gmContent{Parts: []gmPart{textPart(s)}}, OutputDimensionality: in.Dimensions}
	}
	return json.Marshal(struct {
		Requests []gmEmbedContent `json:"requests"`
	}{reqs})
}

// isBatch reports whether an upstream embeddings body is a batch.
func isBatch(body []byte) bool { return bytes.HasPrefix(body, batchPrefix) }

type gmEmbedding struct {
	Values []float64 `json:"values"`
}

// TranslateEmbedResponse turns an EmbedContentResponse ({"embedding":…})
// or a BatchEmbedContentsResponse ({"embeddings":[…]}) into an OpenAI
// embeddings list under alias; base64 writes each vector as float32
// little-endian, base64-encoded, as OpenAI does (provider.AppendEmbeddings).
// Gemini reports no token counts for embeddings: usage is zero.
func TranslateEmbedResponse(dst, body []byte, alias string, base64Format bool) ([]byte, error) {
	var r struct {
		Embedding  *gmEmbedding  `json:"embedding"`
		Embeddings []gmEmbedding `json:"embeddings"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return dst, ErrNotResponse
	}
	list := r.Embeddings
	if r.Embedding != nil {
		list = []gmEmbedding{*r.Embedding}
	}
	if len(list) == 0 {
		return dst, ErrNotResponse
	}
	vecs := make([][]float64, len(list))
	for i := range list {
		vecs[i] = list[i].Values
	}
	// Gemini reports no token counts for embeddings.
	return provider.AppendEmbeddings(dst, vecs, alias, base64Format, 0), nil
}
