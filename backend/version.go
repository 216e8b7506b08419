package backend

// Version is the plugin's version, stamped at build time with
// -ldflags "-X github.com/concur-vault/vault-plugin-secrets-concur/backend.Version=vX.Y.Z".
// Vault compares it with the version given at registration, so it must be
// canonical ("v" + semver).
var Version = "v0.0.0-dev"
