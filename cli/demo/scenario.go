package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aisix/aisix/cli/demo/mockopenai"
	"github.com/aisix/aisix/proxy/admin"
)

// Bounds of the scripted scenario's waits: generous, for a busy machine;
// a run takes the cooldown and a few seconds.
const (
	chatWithin     = 30 * time.Second
	recoveryWithin = 60 * time.Second
)

// scenarioSteps is the number of steps, for "[n/6]".
const scenarioSteps = 6

// runScenario walks the tutorial: healthy, break, failover, cooldown,
// restore, recovery. It prints each step with the real response headers
// and returns an error (one line) at the first step that does not behave.
func runScenario(ctx context.Context, w io.Writer, st *stack) error {
	sc := &scenario{ctx: ctx, w: w, st: st, client: &http.Client{Timeout: chatWithin}}
	defer sc.client.CloseIdleConnections()
	err := sc.run()
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("interrupted at step %d of %d", sc.n, scenarioSteps)
	}
	return err
}

func (sc *scenario) run() error {
	st, w := sc.st, sc.w
	began := time.Now()

	sc.step("healthy", "a request to "+groupName)
	a, err := sc.chat()
	if err != nil {
		return err
	}
	sc.show(a)
	if err := a.servedBy(primaryName); err != nil {
		return fmt.Errorf("healthy: %w", err)
	}

	sc.step("break", "the primary upstream now refuses connections")
	if err := st.primary.SetMode(mockopenai.Refuse); err != nil {
		return fmt.Errorf("break: %w", err)
	}

	sc.step("failover", "the same request again")
	if a, err = sc.chat(); err != nil {
		return err
	}
	sc.show(a)
	if err := a.servedBy(secondaryName); err != nil {
		return fmt.Errorf("failover: %w", err)
	}
	if !strings.Contains(a.attempts, primaryName+"=") {
		return fmt.Errorf("failover: x-aisix-attempts %q does not name the primary's failure", a.attempts)
	}

	sc.step("cooldown", "GET /admin/v1/models/status")
	row, err := sc.status(primaryName)
	if err != nil {
		return err
	}
	if row.Status != "cooldown" || row.StatusReason == "" || row.CooldownUntil == nil {
		return fmt.Errorf("cooldown: %s is %q (reason %q), want cooldown with a reason and cooldown_until", primaryName, row.Status, row.StatusReason)
	}
	until := row.CooldownUntil.Time()
	sc.detail("%s: status %s, status_reason %s, cooldown_until %s (in %s)", primaryName, row.Status, row.StatusReason,
		until.Local().Format("15:04:05"), time.Until(until).Round(100*time.Millisecond))

	sc.step("restore", "the primary upstream answers again")
	if err := st.primary.SetMode(mockopenai.Healthy); err != nil {
		return fmt.Errorf("restore: %w", err)
	}

	sc.step("recovery", "once the cooldown is over, the next request probes the primary")
	if err := sc.waitUntil(until); err != nil {
		return err
	}
	deadline := time.Now().Add(recoveryWithin)
	for {
		if a, err = sc.chat(); err != nil {
			return err
		}
		if a.status == http.StatusOK && a.served == primaryName {
			break
		}
		// Served by the secondary: the cooldown, on the server's clock, is
		// not quite over yet.
		if time.Now().After(deadline) {
			return fmt.Errorf("recovery: the primary did not serve again within %s (last: %s)", recoveryWithin, a.summary())
		}
		if err := sc.waitUntil(time.Now().Add(200 * time.Millisecond)); err != nil {
			return err
		}
	}
	sc.show(a)
	if row, err = sc.status(primaryName); err != nil {
		return err
	}
	sc.detail("%s: status %s", primaryName, row.Status)
	if row.Status != "healthy" {
		return fmt.Errorf("recovery: %s is %q after serving again, want healthy", primaryName, row.Status)
	}
	fmt.Fprintf(w, "\nevery step behaved (%s)\n", time.Since(began).Round(100*time.Millisecond))
	return nil
}

// scenario is the state of one scripted run.
type scenario struct {
	ctx    context.Context
	w      io.Writer
	st     *stack
	client *http.Client
	n      int
}

func (sc *scenario) step(name, what string) {
	sc.n++
	fmt.Fprintf(sc.w, "\n[%d/%d] %-9s %s\n", sc.n, scenarioSteps, name, what)
}

func (sc *scenario) detail(format string, args ...any) {
	fmt.Fprintf(sc.w, "      "+format+"\n", args...)
}

// answer is what the scenario reads of a response.
type answer struct {
	status   int
	proto    string
	served   string
	attempts string
	text     string
}

func (a answer) summary() string {
	return fmt.Sprintf("HTTP %d, x-aisix-served-by %q, x-aisix-attempts %q", a.status, a.served, a.attempts)
}

// servedBy checks that the answer is a 200 from name.
func (a answer) servedBy(name string) error {
	if a.status != http.StatusOK || a.served != name {
		return fmt.Errorf("want HTTP 200 served by %s, got %s", name, a.summary())
	}
	return nil
}

func (sc *scenario) show(a answer) {
	sc.detail("%s %d %s", a.proto, a.status, http.StatusText(a.status))
	sc.detail("x-aisix-served-by: %s", a.served)
	sc.detail("x-aisix-attempts: %s", a.attempts)
	if a.text != "" {
		sc.detail("%q", a.text)
	}
}

// chat sends the tutorial's request to chat-prod.
func (sc *scenario) chat() (answer, error) {
	body := `{"model":"` + groupName + `","messages":[{"role":"user","content":"Say hello."}]}`
	req, err := http.NewRequestWithContext(sc.ctx, http.MethodPost, sc.st.proxyURL+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+sc.st.callerKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := sc.client.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("step %d: request to %s: %w", sc.n, groupName, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, fmt.Errorf("step %d: read the answer: %w", sc.n, err)
	}
	a := answer{status: resp.StatusCode, proto: resp.Proto, served: resp.Header.Get("X-Aisix-Served-By"), attempts: resp.Header.Get("X-Aisix-Attempts")}
	var c struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if json.Unmarshal(data, &c) == nil && len(c.Choices) > 0 {
		a.text = c.Choices[0].Message.Content
	}
	return a, nil
}

// status returns the models/status row of the model named name.
func (sc *scenario) status(name string) (admin.StatusRow, error) {
	rows, err := sc.st.client.ModelsStatus(sc.ctx)
	if err != nil {
		return admin.StatusRow{}, fmt.Errorf("step %d: models/status: %w", sc.n, err)
	}
	for _, r := range rows {
		if r.DisplayName == name {
			return r, nil
		}
	}
	return admin.StatusRow{}, fmt.Errorf("step %d: models/status has no %s", sc.n, name)
}

// waitUntil waits for t (a deadline, not an event: the cooldown's end),
// or fails when the demo is interrupted.
func (sc *scenario) waitUntil(t time.Time) error {
	tm := time.NewTimer(time.Until(t))
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-sc.ctx.Done():
		return sc.ctx.Err()
	}
}
