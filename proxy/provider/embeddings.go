package provider

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
)

// AppendEmbeddings appends the OpenAI embeddings list of vecs under alias
// to dst, for the families that translate an embeddings answer (Gemini,
// Vertex AI, Bedrock). With base64Format each vector is written as
// float32 little-endian, base64-encoded, as OpenAI does. The usage object
// carries promptTokens; a negative count (the upstream reported none)
// leaves usage out.
func AppendEmbeddings(dst []byte, vecs [][]float64, alias string, base64Format bool, promptTokens int64) []byte {
	dst = append(dst, `{"object":"list","data":[`...)
	var raw []byte
	for i, values := range vecs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"object":"embedding","index":`...)
		dst = strconv.AppendInt(dst, int64(i), 10)
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
	dst = AppendJSONString(dst, alias)
	if promptTokens >= 0 {
		dst = append(dst, `,"usage":{"prompt_tokens":`...)
		dst = strconv.AppendInt(dst, promptTokens, 10)
		dst = append(dst, `,"total_tokens":`...)
		dst = strconv.AppendInt(dst, promptTokens, 10)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// WantsBase64 reports whether an OpenAI embeddings body asks for base64
// vectors (encoding_format "base64").
func WantsBase64(body []byte) bool {
	var v struct {
		EncodingFormat string `json:"encoding_format"`
	}
	_ = json.Unmarshal(body, &v)
	return v.EncodingFormat == "base64"
}
