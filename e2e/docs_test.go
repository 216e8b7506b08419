package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"gopkg.in/yaml.v3"
)

// The documentation's code blocks are checked without Vault: every HCL block parses
// (hcl/v2), every YAML block parses (yaml.v3), and the Kubernetes and Terraform
// examples keep the properties their text promises.

type codeBlock struct {
	file string
	line int
	text string
}

// docsBlocks returns the fenced blocks of language lang in README.md and docs/*.md.
func docsBlocks(t *testing.T, lang string) []codeBlock {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []codeBlock
	for _, f := range append([]string{filepath.Join(repoRoot, "README.md")}, files...) {
		blocks = append(blocks, fileBlocks(t, f, lang)...)
	}
	return blocks
}

func fileBlocks(t *testing.T, file, lang string) []codeBlock {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []codeBlock
	var cur *codeBlock
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		fence := strings.TrimSpace(line)
		switch {
		case cur == nil && fence == "```"+lang:
			cur = &codeBlock{file: filepath.Base(file), line: n + 1}
		case cur != nil && fence == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		}
	}
	if cur != nil {
		t.Fatalf("%s: block at line %d is not closed", file, cur.line)
	}
	return blocks
}

func parseHCL(t *testing.T, b codeBlock) *hclsyntax.Body {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(b.text), b.file, hcl.Pos{Line: b.line, Column: 1})
	if diags.HasErrors() {
		t.Fatalf("%s:%d: HCL does not parse: %s", b.file, b.line, diags.Error())
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		t.Fatalf("%s:%d: not native HCL syntax", b.file, b.line)
	}
	return body
}

func TestDocsHCLBlocksParse(t *testing.T) {
	blocks := docsBlocks(t, "hcl")
	if len(blocks) < 10 {
		t.Fatalf("found %d HCL blocks in the docs; the README's policies and docs/terraform.md alone have more", len(blocks))
	}
	for _, b := range blocks {
		parseHCL(t, b)
	}
}

// terraformArguments are the arguments the hashicorp/vault provider documents for the
// resources docs/terraform.md uses (registry.terraform.io/providers/hashicorp/vault:
// r/plugin, r/mount, r/generic_endpoint, r/policy), plus Terraform's meta-arguments.
var terraformArguments = map[string][]string{
	"vault_plugin": {"namespace", "type", "name", "command", "version", "sha256", "args", "env", "oci_image", "runtime"},
	"vault_mount": {"namespace", "path", "type", "description", "plugin_version", "options", "local", "seal_wrap",
		"external_entropy_access", "default_lease_ttl_seconds", "max_lease_ttl_seconds", "audit_non_hmac_request_keys",
		"audit_non_hmac_response_keys", "allowed_response_headers", "passthrough_request_headers", "listing_visibility"},
	"vault_generic_endpoint": {"namespace", "path", "data_json", "data_json_wo", "data_json_wo_version", "disable_read",
		"disable_delete", "ignore_absent_fields", "write_fields"},
	"vault_policy": {"namespace", "name", "policy"},
}

var terraformMetaArguments = []string{"count", "for_each", "depends_on", "provider", "lifecycle"}

func TestTerraformDocUsesTheProvidersArgumentsAndKeepsSecretsOutOfState(t *testing.T) {
	seen := map[string]int{}
	for _, b := range fileBlocks(t, filepath.Join(repoRoot, "docs", "terraform.md"), "hcl") {
		for _, block := range parseHCL(t, b).Blocks {
			if block.Type != "resource" {
				continue
			}
			kind := block.Labels[0]
			seen[kind]++
			allowed, known := terraformArguments[kind]
			if !known {
				t.Errorf("%s:%d: resource %s is not one the doc's test knows the arguments of", b.file, b.line, kind)
				continue
			}
			for name := range block.Body.Attributes {
				if !slices.Contains(allowed, name) && !slices.Contains(terraformMetaArguments, name) {
					t.Errorf("%s:%d: %s has no argument %q", b.file, block.DefRange().Start.Line, kind, name)
				}
			}
			if kind == "vault_generic_endpoint" {
				checkWriteOnly(t, b.file, block)
			}
			if kind == "vault_policy" {
				checkPolicyParses(t, b.file, block)
			}
		}
	}
	for _, kind := range []string{"vault_plugin", "vault_mount", "vault_generic_endpoint", "vault_policy"} {
		if seen[kind] == 0 {
			t.Errorf("docs/terraform.md has no %s", kind)
		}
	}
	if seen["vault_policy"] != 4 {
		t.Errorf("docs/terraform.md has %d vault_policy resources, want the README's four roles", seen["vault_policy"])
	}
}

// checkWriteOnly: the engine's endpoints take secrets; they go in data_json_wo (never
// in state), with a version, and nothing reads them back.
func checkWriteOnly(t *testing.T, file string, block *hclsyntax.Block) {
	t.Helper()
	attrs := block.Body.Attributes
	line := block.DefRange().Start.Line
	if _, ok := attrs["data_json"]; ok {
		t.Errorf("%s:%d: %s writes data_json, which Terraform keeps in state", file, line, block.Labels[1])
	}
	for _, need := range []string{"data_json_wo", "data_json_wo_version", "disable_read", "disable_delete"} {
		if _, ok := attrs[need]; !ok {
			t.Errorf("%s:%d: %s has no %s", file, line, block.Labels[1], need)
		}
	}
}

func checkPolicyParses(t *testing.T, file string, block *hclsyntax.Block) {
	t.Helper()
	attr, ok := block.Body.Attributes["policy"]
	if !ok {
		t.Errorf("%s: vault_policy %s has no policy", file, block.Labels[1])
		return
	}
	v, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("%s: policy %s: %s", file, block.Labels[1], diags.Error())
	}
	parseHCL(t, codeBlock{file: file, line: attr.SrcRange.Start.Line, text: v.AsString()})
}

// yamlDocs decodes every document of every YAML block of the docs.
func yamlDocs(t *testing.T) map[string][]map[string]any {
	t.Helper()
	docs := map[string][]map[string]any{}
	for _, b := range docsBlocks(t, "yaml") {
		dec := yaml.NewDecoder(strings.NewReader(b.text))
		for {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s:%d: YAML does not parse: %v", b.file, b.line, err)
			}
			docs[b.file] = append(docs[b.file], doc)
		}
	}
	return docs
}

func dig(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func TestDocsYAMLBlocksParse(t *testing.T) {
	docs := yamlDocs(t)
	if len(docs["kubernetes.md"]) < 6 {
		t.Fatalf("docs/kubernetes.md has %d YAML documents; want the Helm values, VSO, Deployment and ESO ones", len(docs["kubernetes.md"]))
	}
}

// The VSO example must not restart the app at every renewal, must read (no params) a
// rotating static secret, and apps mount the Secret as a directory (never subPath,
// which kubelet never updates).
func TestKubernetesDocsServeTheTokenWithoutRestarts(t *testing.T) {
	for file, docs := range yamlDocs(t) {
		for _, doc := range docs {
			kind, _ := doc["kind"].(string)
			switch {
			case kind == "VaultDynamicSecret" && strings.HasPrefix(doc["apiVersion"].(string), "secrets.hashicorp.com/"):
				spec, _ := doc["spec"].(map[string]any)
				if _, ok := spec["rolloutRestartTargets"]; ok {
					t.Errorf("%s: VaultDynamicSecret %v restarts its targets at every renewal", file, dig(doc, "metadata", "name"))
				}
				if spec["allowStaticCreds"] != true || spec["params"] != nil {
					t.Errorf("%s: VaultDynamicSecret needs allowStaticCreds: true and no params: %v", file, spec)
				}
			case kind == "ExternalSecret":
				checkRefreshInterval(t, file, dig(doc, "spec", "refreshInterval"))
			}
			checkNoSubPath(t, file, doc)
		}
	}
}

// kubeletDelay is about how long kubelet takes to update a mounted Secret; the engine's
// default refresh_margin must cover ESO's interval plus that.
const (
	kubeletDelay         = 2 * time.Minute
	defaultRefreshMargin = 10 * time.Minute
)

func checkRefreshInterval(t *testing.T, file string, v any) {
	t.Helper()
	s, _ := v.(string)
	d, err := time.ParseDuration(s)
	if err != nil || d+kubeletDelay > defaultRefreshMargin {
		t.Errorf("%s: ExternalSecret refreshInterval %q: want one that with kubelet's delay (%v) stays under refresh_margin (%v)",
			file, s, kubeletDelay, defaultRefreshMargin)
	}
}

func checkNoSubPath(t *testing.T, file string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["subPath"]; ok {
			t.Errorf("%s: a volumeMount with subPath (%v) is never updated by kubelet", file, v)
		}
		for _, c := range v {
			checkNoSubPath(t, file, c)
		}
	case []any:
		for _, c := range v {
			checkNoSubPath(t, file, c)
		}
	}
}

// The Helm values: the init container installs into the shared plugins volume, the
// server mounts that volume where its plugin_directory points.
func TestKubernetesHelmValuesPointVaultAtTheInstalledPlugin(t *testing.T) {
	var values map[string]any
	for _, doc := range yamlDocs(t)["kubernetes.md"] {
		if dig(doc, "server", "ha", "raft", "config") != nil {
			values = doc
		}
	}
	if values == nil {
		t.Fatal("docs/kubernetes.md has no Helm values with server.ha.raft.config")
	}
	cfg := parseHCL(t, codeBlock{file: "kubernetes.md helm config", line: 1, text: dig(values, "server", "ha", "raft", "config").(string)})
	attr, ok := cfg.Attributes["plugin_directory"]
	if !ok {
		t.Fatal("the Helm values' server config sets no plugin_directory")
	}
	dirVal, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	dir := dirVal.AsString()
	mounts, _ := dig(values, "server", "volumeMounts").([]any)
	if len(mounts) != 1 || dig(mounts[0], "name") != "plugins" || dig(mounts[0], "mountPath") != dir {
		t.Errorf("server.volumeMounts %v: want the plugins volume at %s", mounts, dir)
	}
	inits, _ := dig(values, "server", "extraInitContainers").([]any)
	if len(inits) != 1 {
		t.Fatalf("server.extraInitContainers: %v", inits)
	}
	args, _ := dig(inits[0], "args").([]any)
	if len(args) != 2 || args[0] != "-install" || args[1] != dir {
		t.Errorf("init container args %v: want [-install %s]", args, dir)
	}
}

var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// githubAnchor is the anchor GitHub gives a heading: lower case, punctuation other than
// '-' and '_' dropped, spaces as '-'.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestREADMEIsScannableAndItsLinksResolve: README stays within 300 lines with a table of
// contents, and every relative link of README and docs/*.md names an existing file and,
// with #anchor, one of its headings.
func TestREADMEIsScannableAndItsLinksResolve(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(readme), "\n"); n > 300 {
		t.Errorf("README.md has %d lines, want at most 300 (details go to docs/design.md)", n)
	}
	if !strings.Contains(string(readme), "\n## Contents\n") {
		t.Error("README.md has no table of contents")
	}
	files, _ := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	for _, f := range append([]string{filepath.Join(repoRoot, "README.md")}, files...) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(raw), -1) {
			checkLink(t, f, m[1])
		}
	}
}

func checkLink(t *testing.T, from, link string) {
	t.Helper()
	if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
		return
	}
	path, anchor, _ := strings.Cut(link, "#")
	target := from
	if path != "" {
		target = filepath.Join(filepath.Dir(from), filepath.FromSlash(path))
	}
	raw, err := os.ReadFile(target)
	if err != nil {
		t.Errorf("%s: link %s: %v", filepath.Base(from), link, err)
		return
	}
	if anchor == "" {
		return
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if h, ok := strings.CutPrefix(line, "#"); ok && githubAnchor(strings.TrimSpace(strings.TrimLeft(h, "#"))) == anchor {
			return
		}
	}
	t.Errorf("%s: link %s: no heading with that anchor in %s", filepath.Base(from), link, filepath.Base(target))
}
