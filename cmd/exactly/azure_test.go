package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/spark"
	"github.com/exactly/exactly/internal/testenv"
)

// TestAdoptSparkCheckpointFromAzure takes over from a Spark checkpoint in
// Azure storage, as a Databricks job keeps it in ADLS Gen2: the checkpoint
// of TestAdoptSparkCheckpoint (micro-batches 0 and 1 committed, 2 planned
// only, with Spark's .crc files beside them) is uploaded to Azurite and
// read by URL, with each kind of credential: abfss:// with the account's
// shared key (AZURE_STORAGE_KEY), https:// with a SAS, a tampered SAS
// (refused, named as access denied), and the connection string with
// --apply. The ledger then holds the last committed batch's offsets and the
// pipeline applies every record from there once. No output shows the key
// or the signature.
//
// Azurite serves only the blob endpoint (no dfs for abfss://):
// EXACTLY_AZURE_BLOB_ENDPOINT points every URL's account at it, path-style
// (http://127.0.0.1:10000/devstoreaccount1). On Azure the blob endpoint
// is derived from the account (ADLS Gen2 answers the Blob API).
func TestAdoptSparkCheckpointFromAzure(t *testing.T) {
	endpoint := testenv.Azurite(t)
	ctx := context.Background()
	e := newAdoptEnv(t, 30)
	file := e.config(t, "shop.yaml", ", create: true")
	local := filepath.Join(e.dir, "checkpoint")
	sparkBatch(t, local, 0, true, `{"shop.events":{"0":10,"1":5}}`)
	sparkBatch(t, local, 1, true, `{"shop.events":{"1":12,"0":18}}`)
	sparkBatch(t, local, 2, false, `{"shop.events":{"0":25,"1":12}}`)
	for _, f := range []string{"offsets/.0.crc", "offsets/.1.crc", "commits/.0.crc", "commits/.1.crc"} {
		if err := os.WriteFile(filepath.Join(local, f), []byte("crc"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(local, "metadata"), []byte(`{"id":"6f1c8a4e-3f2b-4c1d-9e7a-1b2c3d4e5f60"}`), 0o644); err != nil {
		t.Fatal(err)
	}

	cred, err := container.NewSharedKeyCredential(testenv.AzuriteAccount, testenv.AzuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("exactly-adopt-%d", time.Now().UnixNano())
	c, err := container.NewClientWithSharedKeyCredential(endpoint+"/"+name, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, nil); err != nil {
		t.Fatalf("creating container %s in Azurite: %v", name, err)
	}
	t.Cleanup(func() { c.Delete(context.Background(), nil) })
	const prefix = "checkpoints/shop-events"
	uploaded := 0
	err = filepath.Walk(local, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(local, path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		uploaded++
		_, err = c.NewBlockBlobClient(prefix+"/"+filepath.ToSlash(rel)).UploadBuffer(ctx, b, nil)
		return err
	})
	if err != nil || uploaded != 10 {
		t.Fatalf("uploading the checkpoint: %d files, %v", uploaded, err)
	}

	t.Setenv(spark.BlobEndpointEnv, endpoint)
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
	t.Setenv("AZURE_STORAGE_ACCOUNT", "")
	t.Setenv("AZURE_STORAGE_KEY", testenv.AzuriteKey)
	abfss := fmt.Sprintf("abfss://%s@%s.dfs.core.windows.net/%s", name, testenv.AzuriteAccount, prefix)
	secrets := []string{testenv.AzuriteKey}
	noSecrets := func(what, out string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(out, s) || strings.Contains(out, url.QueryEscape(s)) {
				t.Errorf("%s: the output shows a secret (%.12s…):\n%s", what, s, out)
			}
		}
	}
	dryRun := []string{"micro-batch 1", "seed next_offset 18 (12 records to apply)", "seed next_offset 12 (18 records to apply)",
		"micro-batch 2 was planned (offsets/2) but never committed (no commits/2)", "shop.events[0] offsets 18..24 (7 records)", "dry run: nothing written"}

	code, out := cli(t, "adopt", "-c", file, "--spark-checkpoint", abfss)
	t.Log(out)
	noSecrets("abfss:// with AZURE_STORAGE_KEY", out)
	if code != 0 {
		t.Fatalf("abfss:// with AZURE_STORAGE_KEY: exit %d\n%s", code, out)
	}
	for _, want := range append(dryRun, "with the shared key in AZURE_STORAGE_KEY", abfss) {
		if !strings.Contains(out, want) {
			t.Errorf("abfss:// dry run lacks %q", want)
		}
	}

	// A SAS in an https:// URL, read and list on the container only.
	t.Setenv("AZURE_STORAGE_KEY", "")
	qp, err := sas.BlobSignatureValues{Protocol: sas.ProtocolHTTPSandHTTP, StartTime: time.Now().Add(-time.Minute), ExpiryTime: time.Now().Add(time.Hour),
		Permissions: (&sas.ContainerPermissions{Read: true, List: true}).String(), ContainerName: name}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, qp.Signature())
	https := fmt.Sprintf("https://%s.blob.core.windows.net/%s/%s", testenv.AzuriteAccount, name, prefix)
	code, out = cli(t, "adopt", "-c", file, "--spark-checkpoint", https+"?"+qp.Encode())
	noSecrets("https:// with a SAS", out)
	if code != 0 {
		t.Fatalf("https:// with a SAS: exit %d\n%s", code, out)
	}
	for _, want := range append(dryRun, "with the SAS in the URL", https) {
		if !strings.Contains(out, want) {
			t.Errorf("SAS dry run lacks %q:\n%s", want, out)
		}
	}
	// The same SAS with another signature: refused by the service.
	forged := strings.Replace(qp.Encode(), "sig="+url.QueryEscape(qp.Signature()), "sig="+url.QueryEscape("Zm9yZ2VkLXNpZ25hdHVyZS0wMDAwMDAwMDAwMDAwMDA="), 1)
	secrets = append(secrets, "Zm9yZ2VkLXNpZ25hdHVyZS0wMDAwMDAwMDAwMDAwMDA=")
	code, out = cli(t, "adopt", "-c", file, "--spark-checkpoint", https+"?"+forged)
	noSecrets("a forged SAS", out)
	if code == 0 || !strings.Contains(out, "HTTP 403") || !strings.Contains(out, "access denied with the SAS in the URL") {
		t.Errorf("a forged SAS: exit %d, want a refusal naming access denied:\n%s", code, out)
	}
	if _, err := os.Stat(e.dsn); !os.IsNotExist(err) {
		t.Fatalf("a dry run created the SQLite file: %v", err)
	}

	// The connection string (its own endpoint), with --apply.
	t.Setenv(spark.BlobEndpointEnv, "")
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;",
		testenv.AzuriteAccount, testenv.AzuriteKey, endpoint))
	code, out = cli(t, "adopt", "-c", file, "--spark-checkpoint", abfss, "--apply")
	noSecrets("abfss:// with AZURE_STORAGE_CONNECTION_STRING", out)
	if code != 0 || !strings.Contains(out, "seeded 2 offsets row(s)") || !strings.Contains(out, "with AZURE_STORAGE_CONNECTION_STRING") {
		t.Fatalf("--apply with the connection string: exit %d\n%s", code, out)
	}
	want := map[exactly.TP]int64{{Topic: adoptTopic, Partition: 0}: 18, {Topic: adoptTopic, Partition: 1}: 12}
	if got := e.offsets(t, file); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("seeded offsets: got %v, want %v", got, want)
	}
	e.runPipeline(t, file)
	e.applied(t, [2]int64{18, 12})

	// A path with no checkpoint under it says so.
	code, out = cli(t, "adopt", "-c", file, "--spark-checkpoint", abfss+"-missing")
	if code != 1 || !strings.Contains(out, "no offsets/N files") {
		t.Errorf("a path without a checkpoint: exit %d\n%s", code, out)
	}
}
