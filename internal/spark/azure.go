package spark

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/exactly/exactly/internal/secret"
)

// BlobEndpointEnv overrides the blob service endpoint an Azure URL maps
// to (https://ACCOUNT.blob.core.windows.net): a private endpoint, a
// sovereign cloud, or the Azurite emulator
// (http://127.0.0.1:10000/devstoreaccount1), which has no dfs endpoint
// for abfss:// URLs.
const BlobEndpointEnv = "EXACTLY_AZURE_BLOB_ENDPOINT"

// IsURL reports whether a --spark-checkpoint names cloud storage rather
// than a directory.
func IsURL(s string) bool {
	i := strings.Index(s, "://")
	return i > 0 && !strings.ContainsAny(s[:i], `/\`)
}

// Location is a checkpoint in Azure storage: an account, a container and
// the checkpoint's path in it.
type Location struct {
	Account, Container, Path string
	// SAS is the URL's query when it holds a shared access signature.
	SAS string
	// Display is the URL without its query, for messages.
	Display string
	// endpoint is the blob endpoint of a host outside the public cloud.
	endpoint string
}

// ParseAzure parses the URL forms a Databricks or Synapse user has for a
// checkpoint in ADLS Gen2 or Blob storage:
//
//	abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH   (abfs:// too)
//	wasbs://CONTAINER@ACCOUNT.blob.core.windows.net/PATH  (wasb:// too)
//	https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH[?SAS]
//	https://ACCOUNT.dfs.core.windows.net/CONTAINER/PATH[?SAS]
//
// ADLS Gen2 answers the Blob API on the same account, so every form is
// read through the blob endpoint.
func ParseAzure(raw string) (*Location, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// The parser's error quotes the whole URL, a SAS signature too.
		return nil, errors.New("--spark-checkpoint: not a valid URL")
	}
	bad := func(why string) error {
		return fmt.Errorf("--spark-checkpoint %s://%s%s: %s", u.Scheme, u.Host, u.Path, why)
	}
	loc := &Location{}
	host := strings.ToLower(u.Hostname())
	account, suffix, _ := strings.Cut(host, ".")
	switch strings.ToLower(u.Scheme) {
	case "abfss", "abfs", "wasbs", "wasb":
		if u.User == nil || u.User.Username() == "" {
			return nil, bad("expected CONTAINER@ACCOUNT.dfs.core.windows.net (abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH)")
		}
		loc.Container = u.User.Username()
		loc.Path = strings.Trim(u.Path, "/")
	case "https", "http":
		parts := strings.SplitN(strings.TrimPrefix(u.Path, "/"), "/", 2)
		if parts[0] == "" {
			return nil, bad("expected https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH")
		}
		loc.Container = parts[0]
		if len(parts) == 2 {
			loc.Path = strings.Trim(parts[1], "/")
		}
		if u.RawQuery != "" {
			q := u.Query()
			if q.Get("sig") == "" {
				return nil, bad("the URL has a query but no SAS signature (sig=)")
			}
			secret.Register(q.Get("sig"))
			loc.SAS = u.RawQuery
		}
	default:
		return nil, bad("expected abfss://, wasbs:// or https:// (Azure storage), or a local directory")
	}
	if !strings.HasPrefix(suffix, "dfs.") && !strings.HasPrefix(suffix, "blob.") {
		return nil, bad("expected an Azure storage host, ACCOUNT.dfs.core.windows.net or ACCOUNT.blob.core.windows.net")
	}
	if account == "" {
		return nil, bad("no storage account in the host")
	}
	loc.Account = account
	loc.Display = fmt.Sprintf("%s://%s%s", u.Scheme, u.Host, u.EscapedPath())
	if u.User != nil {
		loc.Display = fmt.Sprintf("%s://%s@%s%s", u.Scheme, url.PathEscape(u.User.Username()), u.Host, u.EscapedPath())
	}
	if suffix != "dfs.core.windows.net" && suffix != "blob.core.windows.net" {
		// A sovereign cloud (core.chinacloudapi.cn, core.usgovcloudapi.net):
		// the same blob endpoint under its suffix.
		suffix = strings.TrimPrefix(strings.TrimPrefix(suffix, "dfs."), "blob.")
		loc.endpoint = "https://" + account + ".blob." + suffix
	}
	return loc, nil
}

// blobEndpoint is the blob service the checkpoint is read from.
func (l *Location) blobEndpoint() string {
	if ep := strings.TrimRight(os.Getenv(BlobEndpointEnv), "/"); ep != "" {
		return ep
	}
	if l.endpoint != "" {
		return l.endpoint
	}
	return "https://" + l.Account + ".blob.core.windows.net"
}

// Azure is a checkpoint in an Azure storage container.
type Azure struct {
	loc *Location
	c   *container.Client
	// Auth says how it authenticates, for the output.
	Auth string
}

// OpenAzure connects to the checkpoint's container. Credentials, first
// found first used: a SAS in the URL; AZURE_STORAGE_CONNECTION_STRING;
// AZURE_STORAGE_KEY (the account's shared key, AZURE_STORAGE_ACCOUNT if
// set must name the URL's account); else Entra ID through
// DefaultAzureCredential (environment, workload identity, managed
// identity, Azure CLI login). Keys and signatures are registered as
// secrets: no output shows them.
func OpenAzure(raw string) (*Azure, error) {
	loc, err := ParseAzure(raw)
	if err != nil {
		return nil, err
	}
	curl := loc.blobEndpoint() + "/" + url.PathEscape(loc.Container)
	a := &Azure{loc: loc}
	switch {
	case loc.SAS != "":
		a.Auth = "the SAS in the URL"
		a.c, err = container.NewClientWithNoCredential(curl+"?"+loc.SAS, nil)
	case os.Getenv("AZURE_STORAGE_CONNECTION_STRING") != "":
		cs := os.Getenv("AZURE_STORAGE_CONNECTION_STRING")
		for _, kv := range strings.Split(cs, ";") {
			k, v, _ := strings.Cut(kv, "=")
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "accountkey", "sharedaccesssignature":
				secret.Register(v)
			}
		}
		secret.Register(cs)
		a.Auth = "AZURE_STORAGE_CONNECTION_STRING"
		a.c, err = container.NewClientFromConnectionString(cs, loc.Container, nil)
	case os.Getenv("AZURE_STORAGE_KEY") != "":
		key := os.Getenv("AZURE_STORAGE_KEY")
		secret.Register(key)
		if acct := os.Getenv("AZURE_STORAGE_ACCOUNT"); acct != "" && !strings.EqualFold(acct, loc.Account) {
			return nil, fmt.Errorf("AZURE_STORAGE_ACCOUNT is %s but the checkpoint is in account %s: the key is another account's", acct, loc.Account)
		}
		a.Auth = "the shared key in AZURE_STORAGE_KEY"
		var cred *container.SharedKeyCredential
		if cred, err = container.NewSharedKeyCredential(loc.Account, key); err != nil {
			return nil, fmt.Errorf("AZURE_STORAGE_KEY: %s", secret.Scrub(err.Error()))
		}
		a.c, err = container.NewClientWithSharedKeyCredential(curl, cred, nil)
	default:
		a.Auth = "Entra ID (DefaultAzureCredential)"
		var cred azcore.TokenCredential
		if cred, err = azidentity.NewDefaultAzureCredential(nil); err != nil {
			return nil, fmt.Errorf("no Azure credential for %s: put a SAS in the URL, or set AZURE_STORAGE_KEY or AZURE_STORAGE_CONNECTION_STRING, or sign in for Entra ID (az login, a managed identity, AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET): %s",
				loc.Display, secret.Scrub(err.Error()))
		}
		a.c, err = container.NewClient(curl, cred, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to %s with %s: %s", loc.Display, a.Auth, secret.Scrub(err.Error()))
	}
	return a, nil
}

func (a *Azure) key(name string) string {
	if a.loc.Path == "" {
		return name
	}
	if name == "" {
		return a.loc.Path
	}
	return a.loc.Path + "/" + name
}

// List implements Store: the blobs directly under dir (a hierarchical
// listing; ADLS Gen2 directories are prefixes, not files). A directory
// that does not exist lists nothing.
func (a *Azure) List(ctx context.Context, dir string) ([]string, error) {
	prefix := a.key(dir) + "/"
	pager := a.c.NewListBlobsHierarchyPager("/", &container.ListBlobsHierarchyOptions{Prefix: &prefix})
	var out []string
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, a.wrap(err)
		}
		for _, b := range page.Segment.BlobItems {
			if b.Name == nil {
				continue
			}
			if b.Properties != nil && b.Properties.ContentLength != nil && *b.Properties.ContentLength == 0 && isFolder(b.Metadata) {
				continue
			}
			out = append(out, path.Base(*b.Name))
		}
	}
	return out, nil
}

func isFolder(md map[string]*string) bool {
	for k, v := range md {
		if strings.EqualFold(k, "hdi_isfolder") && v != nil && strings.EqualFold(*v, "true") {
			return true
		}
	}
	return false
}

// maxFile bounds what ReadFile reads: an offsets file is a few kilobytes
// per thousand partitions.
const maxFile = 64 << 20

// ReadFile implements Store.
func (a *Azure) ReadFile(ctx context.Context, name string) ([]byte, error) {
	resp, err := a.c.NewBlobClient(a.key(name)).DownloadStream(ctx, nil)
	if err != nil {
		return nil, a.wrap(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxFile+1))
	if err != nil {
		return nil, a.wrap(err)
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("%s: larger than %d MB, not a Spark offsets file", a.Where(name), maxFile>>20)
	}
	return b, nil
}

// Where implements Store.
func (a *Azure) Where(name string) string {
	if name == "" {
		return a.loc.Display
	}
	return strings.TrimRight(a.loc.Display, "/") + "/" + name
}

// wrap turns the SDK's error (a multi-line HTTP dump) into one line that
// says what to do, scrubbed of secrets.
func (a *Azure) wrap(err error) error {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		why := re.ErrorCode
		switch {
		case bloberror.HasCode(err, bloberror.ContainerNotFound):
			return fmt.Errorf("container %s not found in account %s: %w", a.loc.Container, a.loc.Account, fs.ErrNotExist)
		case bloberror.HasCode(err, bloberror.BlobNotFound):
			return fs.ErrNotExist
		case re.StatusCode == 403:
			why = fmt.Sprintf("%s: access denied with %s (a wrong key, an expired SAS, or no Storage Blob Data Reader role)", re.ErrorCode, a.Auth)
		}
		return fmt.Errorf("HTTP %d %s", re.StatusCode, why)
	}
	msg := strings.Join(strings.Fields(secret.Scrub(err.Error())), " ")
	if strings.Contains(msg, "DefaultAzureCredential") {
		return fmt.Errorf("no Azure credential: put a SAS in the URL, set AZURE_STORAGE_KEY or AZURE_STORAGE_CONNECTION_STRING, or sign in for Entra ID (az login, a managed identity, AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET) with the Storage Blob Data Reader role: %s", msg)
	}
	return errors.New(msg)
}
