package vertex

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/provider/gemini"
)

// GeminiModelsURL is the prefix of Google's models in project and region
// under base (BaseURL): {base}/v1/projects/{project}/locations/{region}/publishers/google/models.
func GeminiModelsURL(base *url.URL, project, region string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(base.String(), "/") + "/v1/projects/" + url.PathEscape(project) +
		"/locations/" + url.PathEscape(region) + "/publishers/google/models")
	if err != nil {
		return nil, errors.New("the project or region does not make a URL")
	}
	return u, nil
}

// GeminiConfig describes one Google model (Gemini, or a text embedding
// model) on Vertex AI behind one provider key.
type GeminiConfig struct {
	// Models is GeminiModelsURL.
	Models *url.URL
	// Auth sets the credential; nil sends none.
	Auth Auth
	// Model is the Vertex AI model id (gemini-2.5-flash,
	// gemini-embedding-001).
	Model string
	// Forward names extra caller headers (canonical) to copy.
	Forward []string
}

// GeminiEndpoint is a Google model on Vertex AI as a provider.Endpoint.
// Chat completions are the Gemini API's wire (package gemini's
// translation, generateContent and streamGenerateContent?alt=sse under
// the project's models, Google's error envelope) with the provider key's
// bearer token in place of x-goog-api-key. Embeddings go to the model's
// :predict, in Vertex AI's text-embedding shape (instances and
// parameters in, predictions with token counts out), which AI Studio's
// embedContent does not share.
type GeminiEndpoint struct {
	*gemini.Endpoint
	predict *url.URL
	auth    Auth
	forward []string
}

// NewGemini returns the endpoint cfg describes.
func NewGemini(cfg GeminiConfig) *GeminiEndpoint {
	gc := gemini.EndpointConfig{Models: cfg.Models, Model: cfg.Model, Forward: cfg.Forward}
	if cfg.Auth != nil {
		gc.Auth = cfg.Auth.Apply
	}
	g := gemini.NewEndpoint(gc)
	p := *g.URL()
	p.Path = strings.TrimSuffix(p.Path, ":generateContent") + ":predict"
	if p.RawPath != "" {
		p.RawPath = strings.TrimSuffix(p.RawPath, ":generateContent") + ":predict"
	}
	return &GeminiEndpoint{Endpoint: g, predict: &p, auth: cfg.Auth, forward: cfg.Forward}
}

// PredictURL is the model's :predict URL (embeddings).
func (e *GeminiEndpoint) PredictURL() *url.URL { return e.predict }

// Body translates the caller's body: a chat-completions body as the
// Gemini API's (gemini.TranslateRequest), an embeddings body as a
// :predict body (TranslateEmbedRequest).
func (e *GeminiEndpoint) Body(in *provider.Inbound) ([]byte, error) {
	if in.Op == provider.OpEmbeddings {
		return TranslateEmbedRequest(in.Body)
	}
	return e.Endpoint.Body(in)
}

// NewRequest builds the POST to generateContent, streamGenerateContent
// or predict with the bearer token.
func (e *GeminiEndpoint) NewRequest(ctx context.Context, in *provider.Inbound, body []byte) (*http.Request, error) {
	if in.Op != provider.OpEmbeddings {
		return e.Endpoint.NewRequest(ctx, in, body)
	}
	h := make(http.Header, 5+len(e.forward))
	provider.CopyHeaders(h, in.Header, gemini.ForwardHeaders)
	provider.CopyHeaders(h, in.Header, e.forward)
	if e.auth != nil {
		if err := e.auth.Apply(ctx, h); err != nil {
			return nil, err
		}
	}
	h["Content-Type"] = contentJSON
	h["Accept"] = acceptJSON
	return provider.NewPost(ctx, e.predict, h, body), nil
}

// Answer translates a 2xx answer: a chat.completion as the Gemini API's
// (a blocked prompt is a *gemini.BlockedError), or a :predict answer as
// an OpenAI embeddings list (TranslateEmbedResponse).
func (e *GeminiEndpoint) Answer(dst []byte, in *provider.Inbound, body []byte, alias *provider.Alias) ([]byte, error) {
	if in.Op == provider.OpEmbeddings {
		return TranslateEmbedResponse(dst, body, alias.Name, provider.WantsBase64(in.Body))
	}
	return e.Endpoint.Answer(dst, in, body, alias)
}

type oaEmbedRequest struct {
	Input          json.RawMessage `json:"input"`
	Dimensions     *int            `json:"dimensions"`
	EncodingFormat string          `json:"encoding_format"`
}

type embedInstance struct {
	Content string `json:"content"`
}

type embedParameters struct {
	OutputDimensionality *int `json:"outputDimensionality,omitempty"`
}

type predictRequest struct {
	Instances  []embedInstance  `json:"instances"`
	Parameters *embedParameters `json:"parameters,omitempty"`
}

func embedErr(field, reason string) error {
	return &provider.RequestError{Field: field, Reason: reason}
}

// TranslateEmbedRequest turns an OpenAI embeddings body into the body of
// Vertex AI's text-embedding :predict: one instance {"content"} per input
// string, dimensions → parameters.outputDimensionality. Token arrays are
// refused: the models embed text only.
func TranslateEmbedRequest(body []byte) ([]byte, error) {
	var in oaEmbedRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, embedErr("body", "not a JSON object")
	}
	if in.Dimensions != nil && *in.Dimensions < 1 {
		return nil, embedErr("dimensions", "must be at least 1")
	}
	switch in.EncodingFormat {
	case "", "float", "base64":
	default:
		return nil, embedErr("encoding_format", "must be float or base64")
	}
	var out predictRequest
	var one string
	if json.Unmarshal(in.Input, &one) == nil {
		out.Instances = []embedInstance{{Content: one}}
	} else {
		var many []string
		if err := json.Unmarshal(in.Input, &many); err != nil {
			return nil, embedErr("input", "must be a string or an array of strings (Vertex AI does not embed token arrays)")
		}
		if len(many) == 0 {
			return nil, embedErr("input", "must not be empty")
		}
		out.Instances = make([]embedInstance, len(many))
		for i, s := range many {
			out.Instances[i].Content = s
		}
	}
	if in.Dimensions != nil {
		out.Parameters = &embedParameters{OutputDimensionality: in.Dimensions}
	}
	return json.Marshal(out)
}

// ErrNotPrediction is a 2xx :predict answer that holds no embeddings.
var ErrNotPrediction = errors.New("vertex: the answer is not a text-embedding prediction")

// TranslateEmbedResponse turns a :predict answer
// ({"predictions":[{"embeddings":{"values":[…],"statistics":{"token_count":N}}}]})
// into an OpenAI embeddings list under alias (provider.AppendEmbeddings),
// usage the sum of the token counts.
func TranslateEmbedResponse(dst, body []byte, alias string, base64Format bool) ([]byte, error) {
	var r struct {
		Predictions []struct {
			Embeddings *struct {
				Values     []float64 `json:"values"`
				Statistics struct {
					TokenCount float64 `json:"token_count"`
				} `json:"statistics"`
			} `json:"embeddings"`
		} `json:"predictions"`
	}
	if err := json.Unmarshal(body, &r); err != nil || len(r.Predictions) == 0 {
		return dst, ErrNotPrediction
	}
	vecs := make([][]float64, len(r.Predictions))
	tokens := 0
	for i, p := range r.Predictions {
		if p.Embeddings == nil {
			return dst, ErrNotPrediction
		}
		vecs[i] = p.Embeddings.Values
		if tc := p.Embeddings.Statistics.TokenCount; tc > 0 && tc < 1<<31 {
			tokens += int(tc)
		}
	}
	return provider.AppendEmbeddings(dst, vecs, alias, base64Format, int64(tokens)), nil
}

var _ provider.Endpoint = (*GeminiEndpoint)(nil)

// CredentialRefused drops a service account's cached token the upstream
// refused (provider.CredentialRefuser).
func (e *GeminiEndpoint) CredentialRefused(h http.Header) { Refused(e.auth, h) }
