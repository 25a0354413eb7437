package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads the YAML file at path (empty: only the defaults), applies the
// overrides (each "key.path=value", value in YAML syntax) and validates.
func Load(path string, overrides []string) (Config, error) {
	var src []byte
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		src = b
	}
	cfg, err := Parse(src, overrides)
	if err != nil && path != "" {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, err
}

// Parse decodes YAML on top of Default, applies the overrides and validates.
func Parse(src []byte, overrides []string) (Config, error) {
	cfg := Default()
	var doc yaml.Node
	if len(bytes.TrimSpace(src)) > 0 {
		if err := yaml.Unmarshal(src, &doc); err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
	}
	root := &yaml.Node{Kind: yaml.MappingNode}
	if len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return cfg, fmt.Errorf("config: the top level must be a mapping of keys (seed, rounds, ...), got %s", kindName(root))
	}
	for _, o := range overrides {
		if err := applyOverride(root, o); err != nil {
			return cfg, err
		}
	}
	if err := decode(root, reflect.ValueOf(&cfg).Elem(), ""); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// applyOverride sets key.path=value in the mapping tree, creating mappings
// on the way.
func applyOverride(root *yaml.Node, o string) error {
	key, val, ok := strings.Cut(o, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return fmt.Errorf("config: --set %q: want key=value, e.g. local.lr=0.05", o)
	}
	var v yaml.Node
	if err := yaml.Unmarshal([]byte(val), &v); err != nil {
		return fmt.Errorf("config: --set %s: value %q is not YAML: %w", key, val, err)
	}
	value := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""}
	if len(v.Content) > 0 {
		value = v.Content[0]
	}
	node := root
	parts := strings.Split(key, ".")
	for i, p := range parts {
		if node.Kind != yaml.MappingNode {
			return fmt.Errorf("config: --set %s: %s is not a mapping", key, strings.Join(parts[:i], "."))
		}
		var next *yaml.Node
		for j := 0; j+1 < len(node.Content); j += 2 {
			if node.Content[j].Value == p {
				next = node.Content[j+1]
				if i == len(parts)-1 {
					node.Content[j+1] = value
				}
				break
			}
		}
		if next == nil {
			next = &yaml.Node{Kind: yaml.MappingNode}
			if i == len(parts)-1 {
				next = value
			}
			node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: p}, next)
		}
		node = next
	}
	return nil
}

// decode writes node into v strictly, naming the key path in every error.
func decode(node *yaml.Node, v reflect.Value, path string) error {
	if v.Kind() != reflect.Struct {
		if err := node.Decode(v.Addr().Interface()); err != nil {
			return fmt.Errorf("config: %s: want %s, got %s %q%s", path, typeName(v.Type()), kindName(node), node.Value, at(node))
		}
		return nil
	}
	if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
		return nil // "key:" with nothing keeps the defaults
	}
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("config: %s: want a mapping with keys %s, got %s%s", orTop(path), strings.Join(keys(v.Type()), ", "), kindName(node), at(node))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, val := node.Content[i].Value, node.Content[i+1]
		p := k
		if path != "" {
			p = path + "." + k
		}
		if seen[k] {
			return fmt.Errorf("config: %s is given twice%s", p, at(node.Content[i]))
		}
		seen[k] = true
		f, ok := field(v, k)
		if !ok {
			return fmt.Errorf("config: unknown key %s%s; %s takes %s", p, at(node.Content[i]), orTop(path), strings.Join(keys(v.Type()), ", "))
		}
		if err := decode(val, f, p); err != nil {
			return err
		}
	}
	return nil
}

func field(v reflect.Value, key string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag == key {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func keys(t reflect.Type) []string {
	var ks []string
	for i := 0; i < t.NumField(); i++ {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		ks = append(ks, tag)
	}
	return ks
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int:
		return "an integer"
	case reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(typeName(t.Elem()), "an "), "a ") + "s"
	}
	return t.String()
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "the value"
	}
	return "an alias or document"
}

// at locates a node in the file; overrides have no line.
func at(n *yaml.Node) string {
	if n.Line == 0 {
		return ""
	}
	return fmt.Sprintf(" (line %d)", n.Line)
}

func orTop(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

// YAML returns the resolved configuration as YAML, every key included.
func (c Config) YAML() []byte {
	b, err := yaml.Marshal(c)
	if err != nil {
		panic(err) // the struct always marshals
	}
	return b
}

// Hash returns the SHA-256 (hex) of the resolved YAML: the config's fingerprint.
func (c Config) Hash() string {
	s := sha256.Sum256(c.YAML())
	return hex.EncodeToString(s[:])
}
