# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Search captured playbook output for every secret the collection generated.

Usage: find_secrets.py OUTPUT_FILE SECRETS_DIR [SECRETS_DIR ...]

Every file under the secrets directories (the controller's prefect_secrets_dir of each
host) is a secret: a one-line file (a password, an S3 key) is searched as it is and as
base64 at each of the three byte alignments (an Authorization header of any user, a
Docker config's auth); a PEM or OpenSSH private key is searched by each line of its
base64 body. Certificates and public keys are not secrets and are skipped. Prints how
many secret values were searched and, for each hit, only the file it came from (never
the value). Exit 1 on a hit, 2 when there was nothing to search (a check that cannot
fail).
"""
import base64
import os
import sys

PUBLIC_SUFFIXES = (".pub", ".crt", "ca.pem", "cert.pem", "known_hosts", ".csr")


def secret_values(path):
    with open(path, "rb") as handle:
        data = handle.read().decode("utf-8", "replace")
    name = os.path.basename(path)
    if name.endswith(PUBLIC_SUFFIXES) or "BEGIN CERTIFICATE" in data:
        return []
    if "PRIVATE KEY" in data:
        return [line.strip() for line in data.splitlines()
                if len(line.strip()) >= 40 and not line.startswith("-----")]
    value = data.strip()
    if not value or "\n" in value:
        return []
    # The value, and the base64 forms an HTTP client would send (basic auth of any user).
    values = [value]
    if len(value) >= 12:
        for shift in range(3):
            encoded = base64.b64encode(b"\0" * shift + value.encode()).decode()
            values.append(encoded[4 if shift else 0:-4])
    return values


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1], "rb") as handle:
        output = handle.read().decode("utf-8", "replace")
    searched = 0
    hits = []
    for root_dir in argv[2:]:
        for dirpath, _dirs, files in os.walk(root_dir):
            for name in sorted(files):
                path = os.path.join(dirpath, name)
                for value in secret_values(path):
                    if len(value) < 8:
                        continue
                    searched += 1
                    if value in output:
                        hits.append(os.path.relpath(path, root_dir))
    print("searched %d secret values from %d directories in %d bytes of output; found %d"
          % (searched, len(argv) - 2, len(output), len(hits)))
    for hit in sorted(set(hits)):
        print("FOUND a secret of %s" % hit)
    if searched == 0:
        return 2
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
