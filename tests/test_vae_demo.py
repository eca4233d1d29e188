"""The demo trains: its ELBO improves and L_50 is at least the ELBO."""
import os
import sys

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, 'examples'))
import vae_demo  # noqa: E402


def test_demo_trains_and_the_iw_bound_is_tighter(shared_data_dir, tmp_path,
                                                 capsys):
    test_elbo, test_l50 = vae_demo.main(
        ['--data-dir', shared_data_dir, '--updates', '60',
         '--outfolder', str(tmp_path)])
    lines = (tmp_path / 'log.txt').read_text().splitlines()
    first_train_elbo = float(lines[0].split()[4])
    # An untrained Bernoulli decoder scores 784 log 2 = 543 nats.
    assert -543 < first_train_elbo
    assert test_elbo > -300
    assert test_l50 >= test_elbo
