package gemini

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
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
// little-endian, base64-encoded, as OpenAI does (AppendEmbeddings).
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
	return AppendEmbeddings(dst, vecs, alias, base64Format, 0), nil
}

// AppendEmbeddings appends an OpenAI embeddings list of vecs under alias
// to dst, usage promptTokens; base64 writes each vector as float32
// little-endian, base64-encoded, as OpenAI does. Vertex AI's :predict
// answers are written with it too.
func AppendEmbeddings(dst []byte, vecs [][]float64, alias string, base64Format bool, promptTokens int) []byte {
	dst = append(dst, `{"object":"list","data":[`...)
	var raw []byte
	for i, values := range vecs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"object":"embedding","index":`...)
		dst = appendInt(dst, int64(i))
		dst = append(dst, `,"embedding":`...)
		if base64Format {
			raw = raw[:0]
			for _, v := range values {
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(float32(v)))
			}
			dst = append(dst, '"')
			dst = base64.StdEncoding.AppendEncode(dst, raw)
			dst = append(dst, '"')
		} else {
			dst = append(dst, '[')
			for j, v := range values {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = strconv.AppendFloat(dst, v, 'g', -1, 64)
			}
			dst = append(dst, ']')
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `],"model":`...)
	dst = appendString(dst, alias)
	dst = append(dst, `,"usage":{"prompt_tokens":`...)
	dst = appendInt(dst, int64(promptTokens))
	dst = append(dst, `,"total_tokens":`...)
	dst = appendInt(dst, int64(promptTokens))
	return append(dst, "}}"...)
}

// wantsBase64 reports whether an OpenAI embeddings body asks for base64.
func wantsBase64(body []byte) bool {
	var v struct {
		EncodingFormat string `json:"encoding_format"`
	}
	_ = json.Unmarshal(body, &v)
	return v.EncodingFormat == "base64"
}
