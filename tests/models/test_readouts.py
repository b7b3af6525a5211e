"""Label assignment (Diehl & Cook) on a synthetic two-class set, and the two prediction modes."""
import torch

from snnexp.models.readouts import AssignedReadout, assign_labels


def two_class_counts():
    # 4 neurons; class 0 samples excite neurons 0 and 1, class 1 samples neuron 2; neuron 3 never fires
    labels = torch.tensor([0, 0, 1, 1, 1])
    counts = torch.tensor([[5., 1, 0, 0], [3, 2, 1, 0], [0, 1, 6, 0], [1, 0, 4, 0], [0, 0, 5, 0]])
    return counts, labels


def test_assignment_is_right_on_two_classes():
    counts, labels = two_class_counts()
    assignments, proportions = assign_labels(counts, labels, 2)
    assert assignments.tolist() == [0, 0, 1, -1]
    # neuron 1: mean response 1.5 to class 0, 1/3 to class 1
    assert torch.allclose(proportions[1], torch.tensor([1.5, 1 / 3]) / (1.5 + 1 / 3))
    assert proportions[3].sum() == 0


def test_all_activity_and_proportion_predict_the_class():
    counts, labels = two_class_counts()
    for mode in ("all_activity", "proportion"):
        readout = AssignedReadout(4, 2, mode)
        assert readout(counts).abs().sum() == 0  # nothing assigned yet
        readout.assign(counts, labels)
        assert readout(counts).argmax(1).tolist() == labels.tolist(), mode
    readout = AssignedReadout(4, 2, "all_activity")
    readout.assign(counts, labels)
    # class score = mean activity of its neurons: class 0 = (5 + 1)/2, class 1 = 0/1
    assert torch.allclose(readout(counts[:1]), torch.tensor([[3.0, 0.0]]))
