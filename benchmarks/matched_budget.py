"""Burda et al.'s one-layer IWAE trained by Parmesan and by an independent
PyTorch implementation on the same reduced schedule, several seeds each:
their test L_5000 must agree within their spread over seeds.

Both follow Burda et al.'s protocol (784-200-200-50 tanh, Bernoulli output,
batch 20, Adam with epsilon 1e-4, no clipping, the 60,000 training images
re-binarised every epoch, 3**i epochs at 1e-3 * 10**(-i/7)) for the first
`--stages` stages of the schedule (4 stages: 1 + 3 + 9 + 27 = 40 epochs), and
are evaluated with L_5000 on all 10,000 test images (or the first
``--test-subset`` of them), binarised once (seed
1234). Parmesan runs as a sweep (``parmesan.experiments.sweep``, resumable);
the PyTorch twin is ``torch_models.TorchVAE`` with Lasagne's initialisation
(Glorot-uniform weights, zero biases) and the same evaluation function.

    python benchmarks/matched_budget.py --seeds 1-3 -outfolder results/matched

Writes OUTFOLDER/parmesan/ (the sweep), OUTFOLDER/torch/seed<N>/results.json
and OUTFOLDER/matched_budget.md. Needs PyTorch:
``pip install torch==2.13.0 "setuptools>=77.0.3,<81"``.
"""
import argparse
import json
import math
import os
import time

import numpy as np

__all__ = ['train_torch', 'compare', 'main']


def _epochs(stages):
    return sum(3 ** i for i in range(stages))


def train_torch(seed, stages, outfolder, data_dir=None, final_iw=5000,
                iw_samples=1, threads=1, test_subset=None):
    """Train the PyTorch twin on Burda et al.'s schedule; write and return
    results.json (test_LL and its standard error, per-epoch bounds)."""
    import torch
    from parmesan import datasets
    from parmesan.experiments.evaluation import \
        importance_sampled_log_likelihood
    from parmesan.updates import burda_schedule
    import torch_models

    path = os.path.join(outfolder, 'results.json')
    if os.path.exists(path):
        with open(path) as stream:
            return json.load(stream)
    os.makedirs(outfolder, exist_ok=True)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    x_train, _, x_valid, _, _, _ = datasets.load_mnist_realval(data_dir)
    x_test = datasets.load_mnist_dynamic(data_dir)[4][:test_subset]
    x_train = np.concatenate([x_train, x_valid]).astype(np.float32)

    model = torch_models.TorchVAE(784, [200, 200], 50, 'tanh')
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                torch.nn.init.xavier_uniform_(module.weight)
                torch.nn.init.zeros_(module.bias)
    schedule, _ = burda_schedule(1e-3, stages)
    optimizer = torch_models.make_optimizer(model, schedule(1), 1e-4)
    history, start = [], time.time()
    for epoch in range(1, _epochs(stages) + 1):
        for group in optimizer.param_groups:
            group['lr'] = schedule(epoch)
        binary = datasets.binarize(x_train, rng)
        bounds = []
        for rows in np.array_split(rng.permutation(len(binary)),
                                   len(binary) // 20):
            bounds.append(torch_models.train_step(
                model, optimizer, torch.from_numpy(binary[rows]), 1,
                iw_samples)[0])
        history.append({'epoch': epoch, 'train_bound': float(np.mean(bounds))})
        print('torch seed %d epoch %d  train bound %.2f  (%.0f s)'
              % (seed, epoch, history[-1]['train_bound'],
                 time.time() - start), flush=True)
    log_likelihood = importance_sampled_log_likelihood(
        torch_models.log_weights_function(model), x_test.astype(np.float32),
        final_iw, show_progress=False)
    results = {'epochs': len(history), 'seed': seed,
               'test_LL': float(log_likelihood.mean()),
               'test_LL_stderr': float(log_likelihood.std() /
                                       math.sqrt(len(log_likelihood))),
               'eval_importance_samples': final_iw,
               'train_seconds': round(time.time() - start, 1),
               'history': history}
    with open(path, 'w') as stream:
        json.dump(results, stream, indent=2)
    return results


def compare(parmesan_lls, torch_lls):
    """Means, sample standard deviations over seeds and whether the two
    means agree: within two standard errors of their difference (Welch)."""
    p, t = np.asarray(parmesan_lls, float), np.asarray(torch_lls, float)
    difference = p.mean() - t.mean()
    stderr = math.sqrt(p.var(ddof=1) / len(p) + t.var(ddof=1) / len(t))
    return {'parmesan_mean': p.mean(), 'parmesan_std': p.std(ddof=1),
            'torch_mean': t.mean(), 'torch_std': t.std(ddof=1),
            'difference': difference, 'difference_stderr': stderr,
            'agree': abs(difference) <= 2 * stderr}


def main(argv=None):
    from parmesan.experiments import sweep
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seeds', type=sweep.parse_seeds,
                        default=sweep.parse_seeds('1-3'))
    parser.add_argument('--stages', type=int, default=4,
                        help="stages of Burda et al.'s schedule")
    parser.add_argument('--final-iw', type=int, default=5000)
    parser.add_argument('--test-subset', type=int, default=None,
                        help='evaluate on the first N test images (both)')
    parser.add_argument('--data-dir', default=None)
    parser.add_argument('-outfolder', default='results/matched_budget')
    args = parser.parse_args(argv)
    epochs = _epochs(args.stages)
    seeds = ','.join(str(seed) for seed in args.seeds)
    sweep.main(['iw_vae', '--seeds', seeds, '-outfolder',
                os.path.join(args.outfolder, 'parmesan'), '--',
                '--preset', 'burda', '-nepochs', str(epochs),
                '--final-iw', str(args.final_iw), '-eval_epoch',
                str(epochs), '--eval-subset', '100', '--eval-iw', '10'] +
               (['--data-dir', args.data_dir] if args.data_dir else []) +
               (['--test-subset', str(args.test_subset)]
                if args.test_subset else []))
    parmesan_lls = []
    for seed in args.seeds:
        with open(os.path.join(args.outfolder, 'parmesan', 'default',
                               'seed%d' % seed, 'results.json')) as stream:
            parmesan_lls.append(json.load(stream)['test_LL'])
    torch_lls = [train_torch(seed, args.stages, os.path.join(
        args.outfolder, 'torch', 'seed%d' % seed), args.data_dir,
        args.final_iw, test_subset=args.test_subset)['test_LL']
        for seed in args.seeds]
    result = compare(parmesan_lls, torch_lls)
    lines = [
        "Burda et al.'s 1-layer IWAE (k=1), %d epochs (stages 0..%d of the "
        'schedule), seeds %s; test L_%d on %s test images (binarised once, '
        'seed 1234).' % (epochs, args.stages - 1, seeds, args.final_iw,
                         'the first %d' % args.test_subset
                         if args.test_subset else 'all 10,000'), '',
        '| implementation | test L_%d per seed | mean | std over seeds |'
        % args.final_iw, '|---|---|---|---|',
        '| Parmesan | %s | %.2f | %.2f |' % (
            ', '.join('%.2f' % v for v in parmesan_lls),
            result['parmesan_mean'], result['parmesan_std']),
        '| PyTorch twin | %s | %.2f | %.2f |' % (
            ', '.join('%.2f' % v for v in torch_lls), result['torch_mean'],
            result['torch_std']), '',
        'Difference of the means %.2f +- %.2f (standard error): %s.' % (
            result['difference'], result['difference_stderr'],
            'they agree (within two standard errors)' if result['agree']
            else 'they DIFFER (more than two standard errors apart)')]
    text = '\n'.join(lines) + '\n'
    with open(os.path.join(args.outfolder, 'matched_budget.md'), 'w') as out:
        out.write(text)
    print(text)
    return result


if __name__ == '__main__':
    main()
