"""A small VAE built from Parmesan layers, trained briefly on MNIST.

The quickest check that an installation works end to end: it loads MNIST
(dynamically binarised), trains a 784-200-32 VAE for a few hundred Adam
updates and reports the ELBO and the importance-weighted bound on test
images. Larger, paper-faithful trainers are the other scripts here.

    python examples/vae_demo.py --data-dir ../shared/data
"""
import argparse
import os
import time

import numpy as np
import parmesan  # noqa: F401  (before Theano: its speed defaults apply)
import lasagne
import theano
import theano.tensor as T
from lasagne.layers import DenseLayer, InputLayer, get_all_params, get_output

from parmesan.datasets import binarize, load_mnist_dynamic
from parmesan.distributions import log_bernoulli, log_normal2, log_stdnormal
from parmesan.layers import SampleLayer
from parmesan.nonlinearities import softplus
from parmesan.utils import importance_weighted_bound


def build_vae(num_hidden, num_latent, iw_samples):
    x = T.matrix('x')
    l_x = InputLayer((None, 784), x)
    l_enc = DenseLayer(l_x, num_hidden, nonlinearity=softplus)
    l_mu = DenseLayer(l_enc, num_latent, nonlinearity=None)
    l_log_var = DenseLayer(l_enc, num_latent, nonlinearity=None)
    l_z = SampleLayer(l_mu, l_log_var, iw_samples=iw_samples)
    l_dec = DenseLayer(l_z, num_hidden, nonlinearity=softplus)
    l_x_mu = DenseLayer(l_dec, 784, nonlinearity=lasagne.nonlinearities.sigmoid)
    z, mu, log_var, x_mu = get_output([l_z, l_mu, l_log_var, l_x_mu])
    per_sample = (x.shape[0], iw_samples, -1)
    z = z.reshape(per_sample)
    log_w = (log_bernoulli(x.dimshuffle(0, 'x', 1), x_mu.reshape(per_sample),
                           eps=1e-6).sum(-1) +
             log_stdnormal(z).sum(-1) -
             log_normal2(z, mu.dimshuffle(0, 'x', 1),
                         log_var.dimshuffle(0, 'x', 1)).sum(-1))
    bound = importance_weighted_bound(log_w.flatten(), 1, iw_samples).mean()
    return x, l_x_mu, bound


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-dir', help='folder with the MNIST files '
                        '(default: $PARMESAN_DATA, else ~/.parmesan/data)')
    parser.add_argument('--updates', type=int, default=300)
    parser.add_argument('-batch_size', type=int, default=100,
                        help='examples per mini-batch')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('-outfolder', default='results/vae_demo',
                        help='where log.txt goes')
    args = parser.parse_args(argv)

    rng = np.random.RandomState(args.seed)
    lasagne.random.set_rng(rng)
    x_train, _, _, _, x_test, _ = load_mnist_dynamic(args.data_dir)
    x_test = x_test[rng.permutation(len(x_test))[:1000]]

    iw = T.iscalar('iw')
    x, l_out, bound = build_vae(200, 32, iw)
    params = get_all_params(l_out, trainable=True)
    updates = lasagne.updates.adam(-bound, params, learning_rate=1e-3)
    train = theano.function([x, iw], bound, updates=updates)
    evaluate = theano.function([x, iw], bound)

    os.makedirs(args.outfolder, exist_ok=True)
    log_path = os.path.join(args.outfolder, 'log.txt')
    start = time.time()
    with open(log_path, 'w') as log:
        for update in range(1, args.updates + 1):
            rows = rng.randint(0, len(x_train), args.batch_size)
            elbo = train(binarize(x_train[rows], rng), 1)
            if update % 50 == 0 or update == args.updates:
                line = 'update %4d  train ELBO %8.2f  (%.0f s)' % (
                    update, elbo, time.time() - start)
                print(line, flush=True)
                log.write(line + '\n')
        test_elbo = np.mean([evaluate(x_test[i:i + 100], 1)
                             for i in range(0, len(x_test), 100)])
        test_l50 = np.mean([evaluate(x_test[i:i + 100], 50)
                            for i in range(0, len(x_test), 100)])
        line = 'test ELBO %.2f  test L_50 %.2f nats (1000 test images)' % (
            test_elbo, test_l50)
        print(line)
        log.write(line + '\n')
    print('log written to %s' % log_path)
    return test_elbo, test_l50


if __name__ == '__main__':
    main()
