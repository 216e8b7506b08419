package backend

import (
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// rejectUnknownFields answers 400 naming every field the request carries
// that this operation does not take: Vault would only warn, and a typo such
// as "refresh_tokn" must not pass silently. notHere lists schema fields that
// belong to other operations of the same path.
func rejectUnknownFields(req *logical.Request, d *framework.FieldData, notHere ...string) *logical.Response {
	var unknown []string
	for k := range req.Data {
		if _, ok := d.Schema[k]; !ok || slices.Contains(notHere, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return logical.ErrorResponse("unknown fields: %s", strings.Join(unknown, ", "))
}
