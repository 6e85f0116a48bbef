package spark

import (
	"strings"
	"testing"

	"github.com/exactly/exactly/internal/secret"
)

// TestParseAzureURLs: the URL forms a Databricks or Synapse user has for a
// checkpoint in ADLS Gen2 or Blob storage map to an account, container
// and path on the blob endpoint; a SAS is kept apart and its signature
// never shown; what is not an Azure storage URL is refused with the forms
// expected.
func TestParseAzureURLs(t *testing.T) {
	t.Setenv(BlobEndpointEnv, "")
	for _, c := range []struct{ in, account, container, path, display, endpoint string }{
		{"abfss://lake@acme.dfs.core.windows.net/checkpoints/orders", "acme", "lake", "checkpoints/orders",
			"abfss://lake@acme.dfs.core.windows.net/checkpoints/orders", "https://acme.blob.core.windows.net"},
		{"abfs://lake@acme.dfs.core.windows.net/cp/", "acme", "lake", "cp", "abfs://lake@acme.dfs.core.windows.net/cp/", "https://acme.blob.core.windows.net"},
		{"wasbs://lake@acme.blob.core.windows.net/cp", "acme", "lake", "cp", "wasbs://lake@acme.blob.core.windows.net/cp", "https://acme.blob.core.windows.net"},
		{"https://acme.blob.core.windows.net/lake/a/b?sv=2022-11-02&sp=rl&sig=c2VjcmV0LXNpZ25hdHVyZQ%3D%3D", "acme", "lake", "a/b",
			"https://acme.blob.core.windows.net/lake/a/b", "https://acme.blob.core.windows.net"},
		{"https://acme.dfs.core.windows.net/lake/a", "acme", "lake", "a", "https://acme.dfs.core.windows.net/lake/a", "https://acme.blob.core.windows.net"},
		{"abfss://lake@acme.dfs.core.chinacloudapi.cn/cp", "acme", "lake", "cp", "abfss://lake@acme.dfs.core.chinacloudapi.cn/cp", "https://acme.blob.core.chinacloudapi.cn"},
	} {
		l, err := ParseAzure(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if l.Account != c.account || l.Container != c.container || l.Path != c.path || l.Display != c.display || l.blobEndpoint() != c.endpoint {
			t.Errorf("%s: got %+v endpoint %s", c.in, *l, l.blobEndpoint())
		}
	}
	if got := secret.Scrub("sig=c2VjcmV0LXNpZ25hdHVyZQ== in an error"); strings.Contains(got, "c2VjcmV0LXNpZ25hdHVyZQ") {
		t.Errorf("the SAS signature is not registered as a secret: %s", got)
	}
	t.Setenv(BlobEndpointEnv, "http://127.0.0.1:10000/devstoreaccount1/")
	if l, _ := ParseAzure("abfss://c@devstoreaccount1.dfs.core.windows.net/p"); l.blobEndpoint() != "http://127.0.0.1:10000/devstoreaccount1" {
		t.Errorf("%s does not override the endpoint: %s", BlobEndpointEnv, l.blobEndpoint())
	}
	for _, c := range []struct{ in, want string }{
		{"abfss://acme.dfs.core.windows.net/cp", "expected CONTAINER@ACCOUNT"},
		{"https://acme.blob.core.windows.net/", "expected https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH"},
		{"https://example.com/lake/cp", "expected an Azure storage host"},
		{"s3://bucket/cp", "expected abfss://, wasbs:// or https://"},
		{"https://acme.blob.core.windows.net/lake/cp?sv=2022-11-02", "no SAS signature"},
	} {
		if _, err := ParseAzure(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.in, err, c.want)
		}
	}
	for in, want := range map[string]bool{"abfss://c@a.dfs.core.windows.net/p": true, "/dbfs/checkpoints/x": false, "./cp": false, "C:\\cp": false, "dir/with://inside": false} {
		if IsURL(in) != want {
			t.Errorf("IsURL(%q) = %v", in, !want)
		}
	}
}
