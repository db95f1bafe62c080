package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/netacl"
	"go.yaml.in/yaml/v3"
)

// The model catalog file (serve --models): the models every OpenAI and
// AIServices account may deploy the Azure way, by model name alone
// (accounts/catalog.go). YAML (or JSON):
//
//	models:
//	  - name: gpt-4o-mini              # properties.model.name deployments give
//	    format: OpenAI                 # default OpenAI
//	    versions: ["2024-07-18"]       # offered versions, the first the default; none: any
//	    capabilities: {chatCompletion: "true"}
//	    maxCapacity: 100               # largest sku capacity a deployment may ask for
//	    quota: 300                     # most capacity a subscription may deploy of it in a
//	                                   # location, per sku (Azure's regional quota; none: no quota)
//	    upstream:
//	      endpoint: http://vllm.internal:8000
//	      model: meta-llama/Llama-3.1-8B-Instruct   # sent upstream (default: name)
//	      keyHeader: api-key                        # default Authorization: Bearer
//	      keyFile: /run/secrets/vllm-key            # or keyEnv: VLLM_KEY; never the key itself
//
// The upstream key is read from a file or an environment variable, never
// written in the catalog, so the file can be kept in version control.

type catalogFile struct {
	Models []struct {
		Name         string            `yaml:"name"`
		Format       string            `yaml:"format"`
		Versions     []string          `yaml:"versions"`
		Capabilities map[string]string `yaml:"capabilities"`
		MaxCapacity  int               `yaml:"maxCapacity"`
		Quota        int               `yaml:"quota"`
		Upstream     struct {
			Endpoint  string `yaml:"endpoint"`
			Model     string `yaml:"model"`
			KeyHeader string `yaml:"keyHeader"`
			KeyFile   string `yaml:"keyFile"`
			KeyEnv    string `yaml:"keyEnv"`
		} `yaml:"upstream"`
	} `yaml:"models"`
}

// ReloadModels reads the model catalog file again (serve's SIGHUP) and,
// when it is valid, serves deployments of catalog models with it from the
// next request: a rotated upstream key or a moved upstream needs no
// restart. An invalid file changes nothing and its problems are returned.
// Other nodes keep theirs until they reload.
func (m *Main) ReloadModels(ctx context.Context) error {
	if m.Deployments == nil {
		return errors.New("models: the node is not running")
	}
	upstreams, err := netacl.ParsePrefixes(m.Config.UpstreamNetworks) // validated with the config
	if err != nil {
		return err
	}
	c, err := loadCatalog(m.Config.Models, os.LookupEnv, upstreams)
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	if err := m.Deployments.SetCatalog(ctx, c); err != nil {
		return err
	}
	m.Logger.Info("model catalog loaded", "file", m.Config.Models, "models", c.Len())
	return nil
}

// maxCatalogFile bounds the catalog file.
const maxCatalogFile = 1 << 20

// loadCatalog reads the catalog file at path ("" = no catalog), its keys
// from their files or from lookupEnv, and checks it. Errors name the file
// and the model, never a key.
func loadCatalog(path string, lookupEnv func(string) (string, bool), upstreams netacl.Networks) (*accounts.Catalog, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCatalogFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxCatalogFile {
		return nil, fmt.Errorf("%s is larger than 1 MiB", path)
	}
	var file catalogFile
	var problems []string
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// Unknown keys and mistyped values are reported with every other
	// problem (the rest of the file is decoded); malformed YAML alone.
	err = dec.Decode(&file)
	if te, ok := errors.AsType[*yaml.TypeError](err); ok {
		for _, e := range te.Errors {
			problems = append(problems, yamlProblem(e))
		}
	} else if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	var models []accounts.CatalogModel
	for i, m := range file.Models {
		up := m.Upstream
		key := ""
		switch {
		case up.KeyFile != "" && up.KeyEnv != "":
			problems = append(problems, fmt.Sprintf("model %d (%s): give upstream.keyFile or upstream.keyEnv, not both", i+1, m.Name))
		case up.KeyFile != "":
			b, err := readKeyFile(up.KeyFile)
			if err != nil {
				problems = append(problems, fmt.Sprintf("model %d (%s): upstream.keyFile: %v", i+1, m.Name, err))
			}
			key = strings.TrimSpace(string(b))
		case up.KeyEnv != "":
			v, ok := lookupEnv(up.KeyEnv)
			if !ok {
				problems = append(problems, fmt.Sprintf("model %d (%s): upstream.keyEnv: %s is not set", i+1, m.Name, up.KeyEnv))
			}
			key = strings.TrimSpace(v)
		}
		models = append(models, accounts.CatalogModel{Format: m.Format, Name: m.Name, Versions: m.Versions,
			Capabilities: m.Capabilities, MaxCapacity: m.MaxCapacity, Quota: m.Quota,
			Endpoint: up.Endpoint, UpstreamModel: up.Model, KeyHeader: up.KeyHeader, Key: key})
	}
	c, err := accounts.NewCatalog(models, upstreams)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		// One problem a line, as the configuration's (ConfigError).
		return nil, fmt.Errorf("%s:\n  - %s", path, strings.Join(problems, "\n  - "))
	}
	return c, nil
}

// maxKeyFile bounds a catalog key file (a key is at most 4 KiB).
const maxKeyFile = 8 << 10

// readKeyFile reads a key file, refusing one larger than maxKeyFile (a
// path mistyped to a log or a device must not be read whole).
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("%s is larger than 8 KiB: not a key", path)
	}
	return b, nil
}
